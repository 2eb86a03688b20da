"""A Keras-style progress bar that behaves in terminals, notebooks, pipes and log files.

Output format (Keras 3)::

    verbose=1, live:   " 32/157 ━━━━━━━━━━━━━━━━━━━━ 1s 8ms/step - accuracy: 0.9000 - loss: 0.3000"
    verbose=2, final:  "157/157 - 1s - 8ms/step - accuracy: 0.9000 - loss: 0.3000"

Unlike Keras 3 (which always redraws with ``\\b``/``\\r`` and ANSI colours, because its check
``"posix" in sys.modules`` is true on every Linux and macOS Python), the live bar is redrawn
only when ``sys.stdout`` is a terminal, or under Jupyter (``ipykernel`` loaded), or in a PyCharm
console (``PYCHARM_HOSTED``). Anywhere else, such as a pipe, ``| tee`` or a SLURM log, the bar
writes no control characters and prints a single line per epoch, when the epoch ends. Colours
are left out when ``NO_COLOR`` is set.
"""
import math
import numbers
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

_BAR_CHAR = "\u2501"  # '━', as in Keras 3
_BOLD = "\x1b[1m"
_GREEN = "\x1b[32m"
_WHITE = "\x1b[37m"
_RESET = "\x1b[0m"


def _stdout_is_interactive():
    """True where carriage-return redraws render as a live bar."""
    stream = sys.stdout
    try:
        if stream is not None and stream.isatty():
            return True
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        pass
    return "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def _bar_char(stream):
    """'━' where the stream can encode it, '=' otherwise (e.g. a cp1252 console)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        _BAR_CHAR.encode(encoding)
        return _BAR_CHAR
    except (UnicodeEncodeError, LookupError):
        return "="


def _format_time(time_per_unit, unit_name):
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta):
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def _format_number(value):
    if abs(value) > 1e-3:
        return f"{value:.4f}"
    return f"{value:.4e}"


def _as_number(value):
    """A float for numbers and numeric arrays (their mean); None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - any odd object is simply shown as text
        return None
    if array.dtype.kind in "biuf" and array.size:
        return float(np.mean(array))
    return None


class Progbar:
    """Displays a progress bar.

    Args:
        target: total number of steps expected, None if unknown.
        width: width of the bar, in characters.
        verbose: 0 (silent), 1 (progress bar), 2 (one line when the target is reached).
        interval: minimum time in seconds between two redraws of the live bar.
        stateful_metrics: names whose values are shown as given; every other value is
            averaged over the steps since the bar was created (weighted by step count).
            Pass running means (such as the logs of `fit`) as stateful.
        stateless_metrics: the opposite list: only these are averaged, all others are shown
            as given. Give at most one of the two.
        unit_name: what a step is called in the time-per-step field ("step", "sample").
    """

    def __init__(self, target: int | None, width: int = 20, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics: Iterable[str] | None = None, stateless_metrics: Iterable[str] | None = None,
                 unit_name: str = "step") -> None:
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar takes `stateful_metrics` or `stateless_metrics`, not both: the first lists "
                             "the values shown as given, the second the values averaged.")
        if target is not None:
            target = int(target)
        self.target = target
        self.width = int(width)
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics: set[str] | None = None
            self.stateless_metrics: set[str] | None = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None

        self._dynamic_display = _stdout_is_interactive()
        self._color = self._dynamic_display and not os.environ.get("NO_COLOR")
        self._seen_so_far = 0
        self._values: dict[str, list[Any]] = {}  # name -> [weighted sum, weight] (averaged) or [value, 1] (as given)
        self._values_order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_width = 0

    # ------------------------------------------------------------------ public API
    def update(self, current: int, values: Any = None, finalize: bool | None = None) -> None:
        """Move the bar to step `current`.

        Args:
            current: index of the current step (1-based count of steps done).
            values: list of `(name, value)` pairs (or a dict) for the last step.
            finalize: whether this is the last update; defaults to `current >= target`.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if values is None:
            values = ()
        elif hasattr(values, "items"):
            values = values.items()
        for name, value in values:
            self._record(name, value, current)
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)

        if self.verbose == 1:
            if not finalize and now - self._last_update < self.interval:
                return
            if self._dynamic_display:
                self._draw_live(current, now, time_per_unit, finalize)
            elif finalize:
                self._write(self._bar_line(current, now, time_per_unit, True, color=False)[0] + "\n")
        elif self.verbose == 2:
            if finalize:
                self._write(self._summary_line(current, now, time_per_unit) + "\n")
        self._last_update = now

    def add(self, n: int, values: Any = None) -> None:
        """Advance the bar by `n` steps.

        Args:
            n: Number of threads (a positive int).
            values: Values to average.
        """
        self.update(self._seen_so_far + n, values)

    # ------------------------------------------------------------------ bookkeeping
    def _is_averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _record(self, name, value, current):
        if name not in self._values_order:
            self._values_order.append(name)
        number = _as_number(value)
        if number is None:  # text or other non-numeric value: shown as is
            self._values[name] = value
            return
        if not self._is_averaged(name):
            self._values[name] = [number, 1]
            return
        weight = max(current - self._seen_so_far, 1)
        entry = self._values.get(name)
        if isinstance(entry, list):
            entry[0] += number * weight
            entry[1] += weight
        else:
            self._values[name] = [number * weight, weight]

    def _estimate_step_duration(self, current, now):
        """Seconds per step; the (usually slow) first step is left out once there are more."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit

    # ------------------------------------------------------------------ rendering
    def _metrics_text(self):
        parts = []
        for name in self._values_order:
            entry = self._values[name]
            if isinstance(entry, list):
                parts.append(f" - {name}: {_format_number(entry[0] / max(1, entry[1]))}")
            else:
                parts.append(f" - {name}: {entry}")
        return "".join(parts)

    def _bar_line(self, current, now, time_per_unit, finalize, color):
        """(text, visible width) of the verbose=1 line."""
        def paint(code, text):
            return f"{code}{text}{_RESET}" if color else text

        known = self.target is not None and self.target > 0
        if known:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
            filled = min(max(int(self.width * current / self.target), 0), self.width)
            char = _bar_char(sys.stdout)
            plain_bar = f"{count} {char * self.width}"
            bar = paint(_BOLD, count) + " "
            if filled:
                bar += paint(_GREEN, char * filled)
            if filled < self.width:
                bar += paint(_WHITE, char * (self.width - filled))
        else:
            plain_bar = bar = "%7d/Unknown" % current
        if known and not finalize:
            clock = _format_eta(time_per_unit * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        tail = _format_time(time_per_unit, self.unit_name) + self._metrics_text()
        text = f"{bar} {paint(_BOLD, clock)}{tail}"
        width = len(plain_bar) + 1 + len(clock) + len(tail)
        return text, width

    def _draw_live(self, current, now, time_per_unit, finalize):
        text, width = self._bar_line(current, now, time_per_unit, finalize, color=self._color)
        message = "\r" + text
        if self._prev_width > width:  # wipe what is left of a longer previous line
            message += " " * (self._prev_width - width)
        if finalize:
            message += "\n"
        self._write(message)
        self._prev_width = 0 if finalize else width

    def _summary_line(self, current, now, time_per_unit):
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
        else:
            count = str(current)
        return (f"{count} - {now - self._start:.0f}s -{_format_time(time_per_unit, self.unit_name)}"
                f"{self._metrics_text()}")

    @staticmethod
    def _write(message):
        stream = sys.stdout  # looked up at call time, so redirection and capture work
        if stream is None:  # pythonw and similar: nowhere to write
            return
        stream.write(message)
        stream.flush()
