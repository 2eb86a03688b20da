"""cynet.utils.progbar.Progbar: Keras 3 output format, averaging, and terminal vs log-file output."""
import io
import re
import sys
import types

import pytest

from cynet.utils import progbar as progbar_module
from cynet.utils.progbar import Progbar

BAR = "\u2501"
CONTROL = re.compile(r"[\r\b\x1b]")


@pytest.fixture
def non_tty(monkeypatch):
    """stdout is captured (not a terminal), not Jupyter, not PyCharm."""
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def tty(non_tty, monkeypatch, capsys):
    """stdout claims to be a terminal. pytest swaps the capture stream between fixture setup and
    the test call, so the method is patched on the capture class rather than on one instance."""
    monkeypatch.setattr(type(sys.stdout), "isatty", lambda self: True)


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the progbar module: clock.now = seconds."""
    fake = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(progbar_module, "time", types.SimpleNamespace(time=lambda: fake.now))
    return fake


def test_non_tty_prints_only_the_final_line_without_control_characters(non_tty, capsys):
    bar = Progbar(3, interval=0)
    for step, loss in enumerate([1.0, 2.0, 3.0], start=1):
        bar.update(step, [("loss", loss)])
    out = capsys.readouterr().out
    assert not CONTROL.search(out)
    assert out.count("\n") == 1
    # values not listed as stateful are averaged over the epoch: (1 + 2 + 3) / 3
    assert re.fullmatch(rf"3/3 {BAR}{{20}} \d+s \d+(us|ms|s)/step - loss: 2\.0000\n", out), repr(out)


def test_final_line_format_with_a_fake_clock(non_tty, capsys, clock):
    clock.now = 0.0
    bar = Progbar(157)
    clock.now = 0.02
    bar.update(1, {"accuracy": 0.5, "loss": 0.5})
    clock.now = 1.268
    bar.update(157, [("accuracy", 0.9), ("loss", 0.3)])  # weight 156 against 1
    out = capsys.readouterr().out
    acc = (0.5 + 0.9 * 156) / 157
    loss = (0.5 + 0.3 * 156) / 157
    assert out == f"157/157 {BAR * 20} 1s 8ms/step - accuracy: {acc:.4f} - loss: {loss:.4f}\n"


def test_tty_redraws_in_place_with_eta(tty, capsys, clock):
    clock.now = 0.0
    bar = Progbar(100, interval=0)
    clock.now = 1.0
    bar.update(1, [("loss", 1.0)])
    clock.now = 1.5
    bar.update(2, [("loss", 1.0)])
    clock.now = 50.5
    bar.update(100, [("loss", 1.0)])
    out = capsys.readouterr().out
    frames = out.split("\r")[1:]
    assert len(frames) == 3 and out.startswith("\r")
    plain = [re.sub(r"\x1b\[\d+m", "", f) for f in frames]
    assert plain[0].startswith("  1/100 " + BAR * 20 + " 1:39 1s/step - loss: 1.0000")  # ETA 99 s
    assert plain[1].startswith("  2/100 " + BAR * 20 + " 49s 500ms/step")  # the first step is left out
    assert plain[2] == f"100/100 {BAR * 20} 50s 500ms/step - loss: 1.0000\n"  # elapsed time when done
    assert "\x1b[32m" in frames[2] and "\x1b[1m" in frames[0]  # colours in a terminal
    assert "\n" not in "".join(frames[:2])


def test_tty_bar_fills_in_proportion(tty, capsys):
    bar = Progbar(4, width=8, interval=0)
    bar.update(2)
    frame = re.sub(r"\x1b\[\d+m", "", capsys.readouterr().out)
    assert frame.startswith(f"\r2/4 {BAR * 8} ")
    bar.update(2)
    raw = capsys.readouterr().out
    assert f"\x1b[32m{BAR * 4}\x1b[0m\x1b[37m{BAR * 4}\x1b[0m" in raw


def test_tty_pads_a_shorter_redraw(tty, capsys):
    bar = Progbar(3, interval=0, stateful_metrics=["msg"])
    bar.update(1, [("msg", "a long message")])
    bar.update(2, [("msg", "x")])
    frames = capsys.readouterr().out.split("\r")[1:]
    assert frames[1].endswith(" " * (len("a long message") - 1))


def test_no_color_keeps_redraws_but_drops_ansi(tty, monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    bar = Progbar(2, interval=0)
    bar.update(1)
    bar.update(2)
    out = capsys.readouterr().out
    assert out.count("\r") == 2 and "\x1b" not in out


def test_jupyter_counts_as_interactive(non_tty, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    bar = Progbar(2, interval=0)
    bar.update(1)
    assert capsys.readouterr().out.startswith("\r")


def test_tty_throttles_redraws_by_interval(tty, capsys):
    bar = Progbar(10, interval=3600)
    for step in range(1, 11):
        bar.update(step)
    out = capsys.readouterr().out
    assert out.count("\r") == 2  # the first draw and the final one


def test_verbose_2_prints_one_line_at_the_end(non_tty, capsys, clock):
    clock.now = 0.0
    bar = Progbar(157, verbose=2)
    for step in range(1, 157):
        clock.now = step * 0.008
        bar.update(step, [("accuracy", 0.9), ("loss", 0.3)])
    assert capsys.readouterr().out == ""
    clock.now = 1.3
    bar.update(157, [("accuracy", 0.9), ("loss", 0.3)])
    out = capsys.readouterr().out
    assert out == "157/157 - 1s - 8ms/step - accuracy: 0.9000 - loss: 0.3000\n"


def test_verbose_2_in_a_terminal_is_the_same_single_line(tty, capsys):
    bar = Progbar(2, verbose=2)
    bar.update(1, [("loss", 1.0)])
    bar.update(2, [("loss", 1.0)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"2/2 - \d+s - \d+(us|ms|s)/step - loss: 1\.0000\n", out)


def test_verbose_0_is_silent(tty, capsys):
    bar = Progbar(2, verbose=0)
    bar.update(1, [("loss", 1.0)])
    bar.update(2, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_stateful_values_are_shown_as_given(non_tty, capsys):
    bar = Progbar(2, stateful_metrics=["accuracy"])
    bar.update(1, [("accuracy", 0.5), ("loss", 1.0)])
    bar.update(2, [("accuracy", 0.7), ("loss", 3.0)])
    out = capsys.readouterr().out
    assert "accuracy: 0.7000" in out and "loss: 2.0000" in out


def test_stateless_metrics_list_averages_only_those(non_tty, capsys):
    bar = Progbar(2, stateless_metrics=["loss"])
    bar.update(1, [("accuracy", 0.5), ("loss", 1.0)])
    bar.update(2, [("accuracy", 0.7), ("loss", 3.0)])
    out = capsys.readouterr().out
    assert "accuracy: 0.7000" in out and "loss: 2.0000" in out
    with pytest.raises(ValueError, match="not both"):
        Progbar(2, stateful_metrics=["a"], stateless_metrics=["b"])


def test_averages_weight_by_steps_and_add_advances(non_tty, capsys):
    bar = Progbar(4)
    bar.add(1, [("loss", 1.0)])
    bar.add(3, [("loss", 3.0)])  # counts for three steps
    assert "loss: 2.5000" in capsys.readouterr().out


def test_small_values_and_text(non_tty, capsys):
    bar = Progbar(1, stateful_metrics=["lr", "zero", "note"])
    bar.update(1, [("lr", 1e-4), ("zero", 0.0), ("note", "ok")])
    out = capsys.readouterr().out
    assert "lr: 1.0000e-04" in out and "zero: 0.0000e+00" in out and "note: ok" in out


def test_unknown_target(non_tty, tty, capsys):
    bar = Progbar(None, interval=0)
    bar.update(3)
    out = capsys.readouterr().out
    assert "      3/Unknown" in out


def test_unknown_target_non_tty_prints_only_when_finalized(non_tty, capsys):
    bar = Progbar(None, interval=0)
    bar.update(3, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    bar.update(5, [("loss", 1.0)], finalize=True)
    out = capsys.readouterr().out
    assert out.startswith("      5/Unknown") and out.endswith("loss: 1.0000\n") and not CONTROL.search(out)


def test_falls_back_to_ascii_bar_when_stdout_cannot_encode_it(non_tty, monkeypatch):
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    bar = Progbar(2, width=4)
    bar.update(2)
    stream.flush()
    assert raw.getvalue().decode("ascii").startswith("2/2 ==== ")


def test_writes_to_the_current_sys_stdout(non_tty, monkeypatch):
    bar = Progbar(1)
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)  # redirected after construction
    bar.update(1)
    assert buffer.getvalue().startswith("1/1 ")


def _dense_model():
    import cynet
    from cynet import layers
    cynet.utils.set_random_seed(0)
    return cynet.Sequential([cynet.Input(shape=(4,)), layers.Dense(3)])


def test_predict_draws_keras_progress_bar_by_default(non_tty, capsys):
    """Keras 3's predict shows the bar at verbose "auto" / 1 ("4/4 ━━━ 0s 1ms/step"), one line
    at 2 ("4/4 - 0s - 1ms/step"), nothing at 0; the predictions are the same."""
    import numpy as np
    model, x = _dense_model(), np.ones((100, 4), np.float32)
    quiet = model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(model.predict(x), quiet)
    out = capsys.readouterr().out
    assert re.search(r"^4/4 ━+ 0s \d+[mu]?s/step\n$", out), out
    np.testing.assert_array_equal(model.predict(x, batch_size=50, verbose=2), quiet)
    out = capsys.readouterr().out
    assert re.search(r"^2/2 - 0s - \d+[mu]?s/step\n$", out), out


def test_predict_bar_of_a_generator_counts_the_batches_it_saw(non_tty, capsys):
    import numpy as np
    model = _dense_model()
    out = model.predict((np.ones((5, 4), np.float32) for _ in range(3)))
    assert out.shape == (15, 3)
    assert capsys.readouterr().out.startswith("3/3 ")
