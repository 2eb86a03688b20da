"""The benchmark suite's names and report tool: `-k` selections use the words the report's groups
use (fwd, fwd_bwd), and bench/report.py has a real command line."""
import ast
import json
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="bench/ not found next to the tests")


def _benchmarks():
    """(file, test name, group f-string source) for every benchmark that sets benchmark.group."""
    for path in sorted(BENCH.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                groups = [ast.unparse(n.value) for n in ast.walk(node) if isinstance(n, ast.Assign)
                          and any(ast.unparse(t) == "benchmark.group" for t in n.targets)]
                yield path.name, node.name, " ".join(groups)


def test_benchmark_names_use_the_group_words():
    """A benchmark whose group says "fwd+bwd" is named *_fwd_bwd*, one whose group says "fwd" is
    named *_fwd*; no name says forward/backward (so -k "conv2d and fwd" selects what it says)."""
    found = list(_benchmarks())
    assert len(found) > 20
    for filename, name, group in found:
        assert "forward" not in name and "backward" not in name, f"{filename}::{name}"
        if "fwd+bwd" in group:
            assert "fwd_bwd" in name, f"{filename}::{name} times {group}"
        elif " fwd" in group:
            assert "fwd" in name and "bwd" not in name, f"{filename}::{name} times {group}"


def _report(*args):
    return subprocess.run([sys.executable, str(BENCH / "report.py"), *args], capture_output=True, text=True,
                          timeout=120)


def test_report_help_and_errors(tmp_path):
    done = _report("--help")
    assert done.returncode == 0 and "usage: python bench/report.py" in done.stdout
    assert _report().returncode == 2
    missing = _report(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_report_table(tmp_path):
    def bench(backend, median):
        return {"group": "conv2d N1 fwd+bwd", "name": "x", "params": {"backend": backend},
                "stats": {"median": median}}
    data = {"benchmarks": [bench("numpy", 0.004), bench("cython", 0.001)],
            "machine_info": {"cynet": {"threads": 1, "openmp": True, "blas": "b"}}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    done = _report(str(path))
    assert done.returncode == 0
    assert "| conv2d N1 fwd+bwd | 4.00 | 1.00 | 4.0x |" in done.stdout


def test_ab_builds_times_two_builds_in_one_process():
    """bench/ab_builds.py loads a second copy of a compiled family from a shared library (here the
    same build's own) and times both in turns; unknown families and workloads are named."""
    from cynet.kernels import _backend
    rnn = _backend._tables["cython"].get("rnn")
    if rnn is None:
        pytest.skip("the compiled kernels are not built")
    tool = [sys.executable, str(BENCH / "ab_builds.py")]
    done = subprocess.run(tool + ["rnn", rnn.__file__, "gru_fwd", "--repeats", "2", "--one-hot"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "this build" in done.stdout and "median of paired ratios" in done.stdout
    bad = subprocess.run(tool + ["rnn", rnn.__file__, "lstm_sideways"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown workload 'lstm_sideways'" in bad.stderr
    bad = subprocess.run(tool + ["nope", rnn.__file__, "lstm_fwd"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "no compiled kernel family 'nope'" in bad.stderr
