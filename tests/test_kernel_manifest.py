"""cynet._kernels.manifest is the one list of kernel families: the build, the dispatcher, the
exports of cynet.kernels and the completeness tests of the fuzz suite and the leak check all read
it, so a new family is its own files plus one line there (a toy family shows it)."""
import importlib
import os
import pathlib
import runpy
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

import cynet
import cynet.kernels as K
from cynet._kernels import manifest
from cynet.kernels import _backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS_DIR = pathlib.Path(manifest.__file__).parent

# The toy family: a stand-in for its compiled module, its twin and its public module, in a
# package of its own; and the one line the manifest gains.
TOY_FILES = {
    "toy_kernels/__init__.py": "",
    "toy_kernels/_toy.py": '"""Stands in for the compiled module."""\n\n\ndef double(x):\n    return x * 2\n',
    "toy_kernels/_toy_numpy.py": '"""The twin."""\n\n\ndef double(x):\n    return x + x\n',
    "toy_kernels/toy.py": textwrap.dedent('''\
        """The public module."""
        from cynet.kernels._backend import impl

        __all__ = ["toy_double"]


        def toy_double(x):
            return impl("toy").double(x)
        '''),
}
TOY_LINE = 'FAMILIES += (Family("toy", "{compiled}", "toy_kernels._toy_numpy", "toy_kernels.toy"),)\n'

# Imported first in the child process (as a pytest plugin or by a script): the edited manifest
# takes the place of cynet's before cynet is imported.
PRELOAD = textwrap.dedent('''\
    import importlib.util
    import os
    import sys

    _spec = importlib.util.spec_from_file_location("cynet._kernels.manifest", os.environ["TOY_MANIFEST"])
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    sys.modules[_spec.name] = _module
    ''')

TOY_TEST = textwrap.dedent('''\
    import numpy as np

    import cynet.kernels as K
    from cynet.kernels import _backend

    import toy_kernels._toy
    import toy_kernels.toy


    def test_toy_family_is_dispatched_and_exported():
        assert K.toy_double is toy_kernels.toy.toy_double
        x = np.arange(3.0)
        with K.use_backend("cython"):
            assert _backend.impl("toy") is toy_kernels._toy
            cython = K.toy_double(x)
            with K.use_backend("numpy"):
                assert _backend.impl("toy").__name__ == "toy_kernels._toy_numpy"
                np.testing.assert_array_equal(K.toy_double(x), cython)
        before = K.get_backend()
        try:
            K.set_backend("numpy")
            assert _backend.impl("toy").__name__ == "toy_kernels._toy_numpy"
            K.set_backend("cython")
            assert _backend.impl("toy") is toy_kernels._toy
        finally:
            K.set_backend(before)
        info = K.info()
        assert info["compiled"] and info["missing_modules"] == []
    ''')

UNBUILT_SCRIPT = textwrap.dedent('''\
    import warnings

    import numpy as np

    import toy_manifest  # noqa: F401

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import cynet.kernels as K
    assert any("(toy)" in str(w.message) for w in caught), [str(w.message) for w in caught]
    info = K.info()
    assert info["missing_modules"] == ["toy"] and not info["compiled"] and info["backend"] == "numpy", info
    np.testing.assert_array_equal(K.toy_double(np.arange(3.0)), [0.0, 2.0, 4.0])
    with K.use_backend("cython"):
        try:
            K.toy_double(np.arange(3.0))
        except ImportError as e:
            assert "'toy' is not built" in str(e), e
        else:
            raise AssertionError("the unbuilt toy family ran on the cython backend")
    print("ok")
    ''')


def _write_toy_family(tmp_path, compiled="toy_kernels._toy"):
    """Write the toy family's files and the manifest with its line under tmp_path; return the
    environment of a child process that uses them."""
    for name, text in {**TOY_FILES, "toy_manifest.py": PRELOAD, "test_toy_family.py": TOY_TEST}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edited = tmp_path / "cynet" / "_kernels" / "manifest.py"
    edited.parent.mkdir(parents=True)
    edited.write_text(pathlib.Path(manifest.__file__).read_text() + TOY_LINE.format(compiled=compiled))
    env = {k: v for k, v in os.environ.items() if k not in ("CYNET_BACKEND", "CYNET_REQUIRE_COMPILED")}
    env["PYTHONSAFEPATH"] = "1"   # the child's cwd (the checkout, perhaps uncompiled) never shadows this cynet
    cynet_root = str(pathlib.Path(cynet.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), cynet_root] + ([env["PYTHONPATH"]] if "PYTHONPATH" in env
                                                                          else []))
    env["TOY_MANIFEST"] = str(edited)
    return env


def test_manifest_imports_only_the_standard_library():
    """setup.py reads the manifest before cynet is built: it must run without site-packages."""
    code = ("import runpy, sys; m = runpy.run_path(sys.argv[1]); print(list(m['compiled_modules']())); "
            "assert 'cynet' not in sys.modules")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, manifest.__file__], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == str(list(manifest.compiled_modules()))


def test_every_kernel_file_is_in_the_manifest():
    """Each .pyx of cynet/_kernels is a compiled module of the manifest, each *_numpy.py the twin
    of a family; and cynet.kernels imported every compiled module and exports every family."""
    modules = manifest.compiled_modules()
    if list(KERNELS_DIR.glob("*.pyx")):   # (an installed wheel may lack the sources)
        assert {f"{manifest.PACKAGE}.{p.stem}" for p in KERNELS_DIR.glob("*.pyx")} == set(modules.values())
    assert {f"{manifest.PACKAGE}.{p.stem}" for p in KERNELS_DIR.glob("*_numpy.py")} == \
        {f.twin for f in manifest.FAMILIES}
    assert set(_backend._compiled) | set(K.info()["missing_modules"]) == set(modules)
    for family in manifest.FAMILIES:
        public = importlib.import_module(family.public)
        assert public.__all__ and all(getattr(K, name) is getattr(public, name) for name in public.__all__)


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source checkout's setup.py")
def test_setup_builds_the_manifests_modules(tmp_path, monkeypatch):
    """setup.py makes one Extension per compiled module of the manifest, a family added there
    included (setuptools' setup and Cython's cythonize replaced by recorders)."""
    setuptools = pytest.importorskip("setuptools")
    cython_build = pytest.importorskip("Cython.Build")
    built = []
    monkeypatch.setattr(setuptools, "setup", lambda **kw: built.append(kw["ext_modules"]))
    monkeypatch.setattr(cython_build, "cythonize", lambda exts, **kw: exts)
    monkeypatch.delenv("CYNET_MODULES", raising=False)
    setup = tmp_path / "setup.py"
    setup.write_text((ROOT / "setup.py").read_text())
    _write_toy_family(tmp_path)
    runpy.run_path(str(ROOT / "setup.py"))
    runpy.run_path(str(setup))
    plain, with_toy = ([(e.name, e.sources) for e in exts] for exts in built)
    assert plain == [(m, [m.replace(".", "/") + ".pyx"]) for m in manifest.compiled_modules().values()]
    assert with_toy == plain + [("toy_kernels._toy", ["toy_kernels/_toy.pyx"])]


def test_a_toy_family_needs_only_its_line_in_the_manifest(tmp_path):
    """With the toy family's files and its manifest line: cynet.kernels exports and dispatches
    it on both backends (set_backend, use_backend) and info() counts it built; the fuzz suite's
    and the leak check's completeness tests fail, naming its kernel (it has no spec, no case)."""
    env = _write_toy_family(tmp_path)
    report = tmp_path / "report.xml"
    tests = ["tests/robustness/test_fuzz_kernels.py::test_every_kernel_is_fuzzed",
             "tests/robustness/test_leaks.py::test_every_public_kernel_has_a_leak_case"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "toy_manifest", "-p", "no:cacheprovider", "-q",
                           "-c", str(ROOT / "pyproject.toml"), f"--junitxml={report}",
                           str(tmp_path / "test_toy_family.py")] + [str(ROOT / t) for t in tests],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert report.exists(), proc.stdout + proc.stderr
    outcomes = {}
    for testcase in ET.parse(report).iter("testcase"):
        failure = testcase.find("failure")
        outcomes[testcase.get("name")] = None if failure is None else failure.get("message", "")
    assert outcomes.keys() == {"test_toy_family_is_dispatched_and_exported", "test_every_kernel_is_fuzzed",
                               "test_every_public_kernel_has_a_leak_case"}, proc.stdout
    assert outcomes["test_toy_family_is_dispatched_and_exported"] is None, proc.stdout
    for name in ("test_every_kernel_is_fuzzed", "test_every_public_kernel_has_a_leak_case"):
        assert outcomes[name] is not None and "toy_double" in outcomes[name], (name, proc.stdout)


def test_a_toy_family_without_its_compiled_module(tmp_path):
    """The toy family's compiled module missing: cynet warns naming it, info() lists it, the NumPy
    backend serves it and the cython backend refuses it."""
    env = _write_toy_family(tmp_path, compiled="toy_kernels._not_built")
    proc = subprocess.run([sys.executable, "-c", UNBUILT_SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
