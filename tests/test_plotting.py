"""cynet.utils.plot_history draws train/validation curves to a PNG."""
import pytest

from cynet.utils import plot_history


def test_plot_history_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]}
    path = plot_history(history, tmp_path / "sub" / "curves.png", title="run")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_history_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="history"):
        plot_history({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="not in the history"):
        plot_history({"loss": [1.0]}, tmp_path / "x.png", metrics=["accuracy"])
