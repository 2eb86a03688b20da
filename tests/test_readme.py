"""README's Python examples run as written (in order, in one namespace), so the docs cannot rot."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    if not README.exists():  # tests run from an installed sdist without the README next to them
        return []
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.skipif(not _blocks(), reason="README.md not found next to the tests")
def test_readme_python_examples_run(capsys):
    namespace = {}
    for i, block in enumerate(_blocks()):
        if block.lstrip().startswith("{"):  # printed output, not code
            continue
        exec(compile(block, f"README.md[python block {i}]", "exec"), namespace)
    assert namespace["history"].history["val_accuracy"][-1] > 0.8
