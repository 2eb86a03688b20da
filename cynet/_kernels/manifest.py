"""The kernel manifest: the one list of cynet's compiled extensions and kernel families.

Everything that enumerates the kernels reads it: setup.py (one Extension per compiled module),
cynet.kernels (which modules it imports, dispatches between and re-exports), the fuzz suite's and
the leak check's completeness tests. A kernel family `<name>` is four files:

    cynet/_kernels/<name>.pyx        the compiled kernels
    cynet/_kernels/<name>_numpy.py   their NumPy twin: the same functions, signatures and results
    cynet/kernels/<name>.py          the public functions (validation, then impl("<name>")),
                                     listed in its __all__ and re-exported by cynet.kernels
    a line `family("<name>")` in FAMILIES below

plus its test cases (bench/kernel_cases/<name>.py, the fuzz specs of
tests/robustness/test_fuzz_kernels.py), whose completeness tests name what is missing.

setup.py reads this file without importing cynet (runpy.run_path, before anything is built):
it must import nothing but the standard library.
"""
from collections import namedtuple

PACKAGE = "cynet._kernels"

Family = namedtuple("Family", "name compiled twin public")
Family.__doc__ = """A kernel family: its short name (the key of impl(name)) and the dotted names of its
compiled module, its NumPy twin and its public module."""


def family(name):
    """The family `name` laid out as usual (see the module docstring)."""
    return Family(name, f"{PACKAGE}.{name}", f"{PACKAGE}.{name}_numpy", f"cynet.kernels.{name}")


# Compiled support extensions, built and imported before the families; no twin, no public module.
SUPPORT = ("_openmp", "_memory", "_gemm")   # OpenMP thread control; the caching allocator of array
# data; cynet_gemm.h's products for Python (the tests; kernels cimport _gemm.pxd)

FAMILIES = (
    family("conv"),
    family("pool"),
    family("norm"),
    family("rnn"),
    family("activations"),
    family("optim"),
    family("layernorm"),
    family("attention"),
    family("depthwise"),
    family("bf16"),
)


def compiled_modules():
    """{short name: dotted module name} of every compiled extension, support modules first:
    what setup.py builds and cynet.kernels imports."""
    modules = {name: f"{PACKAGE}.{name}" for name in SUPPORT}
    modules.update((f.name, f.compiled) for f in FAMILIES)
    return modules
