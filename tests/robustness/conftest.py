"""Makes the fuzz helpers (_fuzz.py beside this file) importable as `cynet_fuzz`, and the kernels'
case tables (bench/kernel_cases/) as `kernel_cases`, by the test modules here (pytest's importlib
mode puts no test directory on sys.path)."""
import importlib.util
import pathlib
import sys

_BENCH = str(pathlib.Path(__file__).resolve().parents[2] / "bench")
if _BENCH not in sys.path:
    sys.path.append(_BENCH)

if "cynet_fuzz" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("cynet_fuzz", pathlib.Path(__file__).with_name("_fuzz.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["cynet_fuzz"] = _module
    _spec.loader.exec_module(_module)
