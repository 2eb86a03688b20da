"""Every example runs end to end in its reduced (--smoke) mode, on small files the test writes
(MNIST-format IDX files, a text file) or on scikit-learn's bundled tables."""
import importlib

import numpy as np
import pytest

from cynet.datasets.idx import write_idx

SMOKE = ["--smoke", "--verbose", "0"]


@pytest.fixture
def fake_mnist(tmp_path):
    """Tiny MNIST-shaped files: 300 training and 200 test images with learnable labels."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 200)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row encodes the label
            images[i, 2 + 2 * label:4 + 2 * label, 4:24] = 255
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def _main(name):
    return importlib.import_module(f"cynet.examples.{name}").main


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn", "mnist_convnet", "manual_loop"])
def test_mnist_examples(name, fake_mnist, tmp_path, capsys):
    plot = tmp_path / "curves.png"
    argv = SMOKE + ["--data-dir", str(fake_mnist), "--batch-size", "32"]
    if name != "manual_loop":
        argv += ["--plot", str(plot)] if importlib.util.find_spec("matplotlib") else []
    accuracy = _main(name)(argv)
    out = capsys.readouterr().out
    assert "MNIST (full): 300 training and 200 test images" in out
    assert "test accuracy" in out and "time per epoch" in out
    assert 0.0 <= accuracy <= 1.0
    if "--plot" in argv:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_char_rnn_example(cell, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello cynet, a keras-like library. " * 12, encoding="utf-8")
    results = _main("char_rnn")(SMOKE + ["--cell", cell, "--text", str(corpus), "--seq-length", "20",
                                         "--units", "16", "--batch-size", "16"])
    out = capsys.readouterr().out
    assert f"char_rnn ({cell})" in out and "--- sampled at temperature" in out
    assert 0.0 <= results["accuracy"] <= 1.0 and np.isfinite(results["loss"])


@pytest.mark.parametrize("name", ["quickstart", "tabular"])
def test_sklearn_examples(name, capsys):
    pytest.importorskip("sklearn")
    result = _main(name)(SMOKE)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "time per epoch" in out
    assert result is not None


def test_examples_have_help(capsys):
    for name in ["quickstart", "mnist_mlp", "mnist_cnn", "mnist_convnet", "char_rnn", "tabular", "manual_loop"]:
        with pytest.raises(SystemExit) as exit_info:
            _main(name)(["--help"])
        assert exit_info.value.code == 0
        assert "--backend" in capsys.readouterr().out


def test_examples_dispatcher(capsys):
    from cynet.examples.__main__ import main
    assert main([]) == 0 and "quickstart" in capsys.readouterr().out
    assert main(["nope"]) == 2
    with pytest.raises(SystemExit):
        main(["tabular", "--help"])
