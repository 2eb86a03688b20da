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


NAMES = ["quickstart", "mnist_mlp", "mnist_cnn", "mnist_convnet", "char_rnn", "tabular", "manual_loop"]


def test_examples_have_help(capsys):
    """`cynet-examples NAME --help`: the usage line names the example, each default is said once,
    and the description is the docstring's whole first paragraph (not its first line)."""
    for name in NAMES:
        with pytest.raises(SystemExit) as exit_info:
            _main(name)(["--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "--backend" in out
        assert out.startswith(f"usage: cynet-examples {name} ")
        assert out.count("(default: all cores)") == 1 and "(default: None)" not in out
        assert "(default: False)" not in out
        first_paragraph = " ".join(importlib.import_module(f"cynet.examples.{name}").__doc__.strip()
                                   .split("\n\n")[0].split())
        assert first_paragraph.split()[-1] in " ".join(out.split()), name


def test_help_defaults_are_shown_once(capsys):
    with pytest.raises(SystemExit):
        _main("char_rnn")(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "training epochs (default: 20)" in out
    assert "(default: 1 for small texts, seq-length for large) (default" not in out


def test_examples_dispatcher(capsys):
    from cynet.examples.__main__ import main
    assert main(["--help"]) == 0 and "quickstart" in capsys.readouterr().out
    assert main([]) == 2                      # no name: usage on stderr, status 2
    err = capsys.readouterr().err
    assert "usage: cynet-examples NAME" in err and "required" in err
    assert main(["nope"]) == 2 and "unknown example 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tabular", "--help"])


def test_command_line_exit_status(tmp_path):
    """The real command (python -m cynet.examples) exits 2 without a name, as argparse does."""
    import os
    import subprocess
    import sys
    import cynet
    root = os.path.dirname(os.path.dirname(os.path.abspath(cynet.__file__)))   # the cynet these tests import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([sys.executable, "-m", "cynet.examples"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage: cynet-examples NAME" in done.stderr


def test_results_file(tmp_path, capsys):
    """--results appends one JSON line per run: the example, its metrics, time per epoch, settings."""
    import json
    pytest.importorskip("sklearn")
    path = tmp_path / "results.jsonl"
    for _ in range(2):
        _main("quickstart")(SMOKE + ["--results", str(path)])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 2
    record = records[0]
    assert record["example"] == "quickstart" and record["epochs"] == 1
    assert 0.0 <= record["results"]["test accuracy"] <= 1.0
    assert record["seconds_per_epoch"] > 0 and record["backend"] in ("cython", "numpy")
    assert "--smoke" in record["argv"] and record["history"]["loss"]


def test_dtype_policy_option(fake_mnist, tmp_path, capsys):
    """--dtype-policy sets Keras's global policy before the model is built; the record says which
    policy and which bfloat16 product path ran."""
    import json

    import cynet
    path = tmp_path / "results.jsonl"
    try:
        _main("mnist_cnn")(SMOKE + ["--data-dir", str(fake_mnist), "--dtype-policy", "mixed_bfloat16",
                                    "--results", str(path)])
        assert cynet.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        cynet.mixed_precision.set_global_policy("float32")
    record = json.loads(path.read_text().splitlines()[0])
    assert record["settings"]["dtype_policy"] == "mixed_bfloat16"
    assert record["bf16_path"] == cynet.kernels.info()["bf16"]
    with pytest.raises(SystemExit):
        _main("mnist_cnn")(["--dtype-policy", "bfloat17"])
    assert "bfloat17" in capsys.readouterr().err


def test_tabular_plot_labels_every_run(tmp_path, monkeypatch):
    """tabular --plot draws all four runs, each curve labelled (a legend entry per run)."""
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from cynet.examples import tabular
    drawn = {}
    real = tabular.plot_runs

    def spy(histories, path):
        drawn.update(histories)
        return real(histories, path)

    monkeypatch.setattr(tabular, "plot_runs", spy)
    plot = tmp_path / "tabular.png"
    tabular.main(SMOKE + ["--plot", str(plot)])
    assert len(drawn) == 4 and len(set(drawn)) == 4
    assert {label.split(":")[0] for label in drawn} == {"breast_cancer", "wine"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
