"""README's and the docs pages' Python examples run as written (each file's ```python blocks in
order, in one namespace), so the docs cannot rot. Blocks marked ```py are not run (they need MPI,
a file of the reader's, or show output)."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _blocks(path):
    if not path.exists():  # tests run from an installed sdist without the README next to them
        return []
    blocks = re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [b for b in blocks if not b.lstrip().startswith("{")]   # printed output, not code


def _pages():
    return sorted(p for p in DOCS.rglob("*.md") if _blocks(p)) if DOCS.is_dir() else []


@pytest.mark.skipif(not _blocks(README), reason="README.md not found next to the tests")
def test_readme_python_examples_run(capsys):
    namespace = {}
    for i, block in enumerate(_blocks(README)):
        exec(compile(block, f"README.md[python block {i}]", "exec"), namespace)
    assert namespace["history"].history["val_accuracy"][-1] > 0.8


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_python_examples_run(page, tmp_path):
    """Each page in its own process (pages change process-wide settings: threads, backends), on the
    cynet this test session imported (the installed package in CI, a checkout built in place here)."""
    import cynet
    source = "\n".join(f"# --- {page.name} python block {i}\n{block}" for i, block in enumerate(_blocks(page)))
    script = tmp_path / "page.py"
    script.write_text(source, encoding="utf-8")
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(cynet.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{page}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
