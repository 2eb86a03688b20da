"""Build script: one Extension per compiled module of cynet/_kernels/manifest.py, compiled with Cython 3.

Environment switches:
  CYNET_NO_OPENMP=1       build without OpenMP (serial kernels).
  CYNET_REQUIRE_OPENMP=1  fail the build if the compiler cannot do OpenMP.
  CYNET_DEBUG_BUILD=1     bounds checking: Cython's on memoryviews, cynet_check.h's CY_AT on raw pointers.
  CYNET_MODULES=a,b       build only these kernel modules (development convenience).
"""
import os
import runpy
import shlex
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, LinkError

# {short name: module}; read by path: cynet itself cannot be imported before it is built
KERNEL_MODULES = runpy.run_path(os.path.join(os.path.dirname(__file__), "cynet", "_kernels", "manifest.py"))[
    "compiled_modules"]()

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


class BuildExt(build_ext):
    """build_ext that probes for OpenMP and falls back to serial code."""

    def _probe_openmp(self, cflags, ldflags):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                # linked as the extensions will be (LDFLAGS: e.g. -fsanitize=address, without which
                # a probe compiled with CFLAGS' sanitizer would not link and OpenMP would drop out)
                self.compiler.link_executable(objs, "omp_probe", output_dir=tmp,
                                              extra_postargs=ldflags + shlex.split(os.environ.get("LDFLAGS", "")))
            except (CompileError, LinkError, CCompilerError):
                return False
        return True

    def build_extensions(self):
        cflags, ldflags = _openmp_flags(self.compiler.compiler_type)
        if _flag("CYNET_NO_OPENMP"):
            use_openmp = False
            print("cynet: CYNET_NO_OPENMP is set; building serial kernels without OpenMP.")
        else:
            use_openmp = self._probe_openmp(cflags, ldflags)
            if not use_openmp:
                if _flag("CYNET_REQUIRE_OPENMP"):
                    raise RuntimeError("cynet: CYNET_REQUIRE_OPENMP=1 but the compiler cannot build OpenMP code.")
                msg = "cynet: the compiler does not support OpenMP; building serial kernels (slower, still correct)."
                print("*" * len(msg), msg, "*" * len(msg), sep="\n", file=sys.stderr)
        # -fno-math-errno: sqrt in a loop stays a vector instruction (no kernel reads errno).
        opt = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3", "-fno-math-errno"]
        for ext in self.extensions:
            ext.extra_compile_args = opt + (cflags if use_openmp else [])
            ext.extra_link_args = ldflags if use_openmp else []
        super().build_extensions()


def extensions():
    selected = os.environ.get("CYNET_MODULES")
    names = [m.strip() for m in selected.split(",")] if selected else list(KERNEL_MODULES)
    unknown = sorted(set(names) - set(KERNEL_MODULES))
    if unknown:
        raise SystemExit(f"cynet: CYNET_MODULES names no kernel module {unknown}; the modules: {list(KERNEL_MODULES)}")
    debug = _flag("CYNET_DEBUG_BUILD")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "cdivision": True,
        "initializedcheck": debug,
        "embedsignature": True,
    }
    exts = [
        Extension(
            KERNEL_MODULES[name],
            [KERNEL_MODULES[name].replace(".", "/") + ".pyx"],
            include_dirs=[np.get_include(), "cynet/_kernels"],   # cynet_simd.h
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
            + ([("CYNET_DEBUG_BUILD", "1")] if debug else []),   # cynet_check.h's CY_AT checks
        )
        for name in names
    ]
    return cythonize(exts, compiler_directives=directives, annotate=False)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
