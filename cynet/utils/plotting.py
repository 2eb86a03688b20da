"""Training curves as a picture: `plot_history(history, path)`.

matplotlib is an optional extra (`pip install "cynet[examples]"`); it is imported only when a
plot is drawn, and always with the non-interactive Agg canvas, so this works without a screen.
"""
import os
from collections.abc import Sequence
from typing import Any


def _history_dict(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("history must be a History returned by fit() (or its non-empty .history dict); "
                         f"received {history!r}")
    return logs


def plot_history(history: Any, path: str | os.PathLike[str], metrics: Sequence[str] | None = None,
                 title: str | None = None, dpi: int = 100) -> Any:
    """Draw loss and metric curves (train and validation) per epoch and save them to `path` (PNG).

    Args:
        history: the History returned by `model.fit`, or its `.history` dict.
        path: where to write the image; the format follows the extension (".png" recommended).
        metrics: names to plot (without "val_"); default: every training entry, "loss" first.
        title: optional figure title.
        dpi: Resolution of the saved image.
    Returns the path written.
    """
    logs = _history_dict(history)
    names = metrics or sorted((k for k in logs if not k.startswith("val_")), key=lambda k: (k != "loss", k))
    missing = [name for name in names if name not in logs]
    if missing:
        raise ValueError(f"metrics {missing} are not in the history; it has {sorted(logs)}")
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as err:
        raise ImportError('plot_history needs matplotlib: pip install "cynet[examples]"') from err
    fig = Figure(figsize=(4.2 * len(names), 3.2), dpi=dpi)
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        epochs = range(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], marker="o", markersize=3, label="train")
        if "val_" + name in logs:
            ax.plot(range(1, len(logs["val_" + name]) + 1), logs["val_" + name], marker="o", markersize=3,
                    label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path)
    return path
