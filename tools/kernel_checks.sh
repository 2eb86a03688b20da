#!/usr/bin/env bash
# tools/kernel_checks.sh: the kernel tests on two checking builds of this checkout (.ci/run runs it
# after the main tests; run it yourself after changing a kernel):
#
#   1. the debug build (CYNET_DEBUG_BUILD=1): Cython's bounds checks on memoryviews, and CY_AT /
#      CY_SPAN (cynet_check.h) on the kernels' raw-pointer accesses, so an index outside a buffer
#      aborts with "out of bounds" and the place; then pytest tests/kernels and the kernel fuzz
#      tests (tests/robustness/test_fuzz_kernels.py).
#   2. AddressSanitizer: the kernels compiled with -fsanitize=address -fno-omit-frame-pointer
#      (libasan preloaded into the Python that runs them, leak detection off: the interpreter's own
#      allocations are not ours), then pytest tests/kernels, with OpenMP (setup.py's OpenMP probe
#      links with LDFLAGS, so the sanitizer does not make OpenMP drop out as it used to).
#
# Each build happens in a fresh temporary copy of the checkout (the files git tracks or would track),
# so the checkout's own compiled modules are left alone. Usage:
#
#   tools/kernel_checks.sh [debug|asan|all]      (default all; PYTHON=... picks the interpreter,
#                                                 JOBS=... the build's parallel jobs, default 2)
#
# Needs a C compiler with libasan (GCC), and Cython, setuptools and numpy in that Python (installed
# here from the build requirements if missing). Time on a 2-core machine: about 4 minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
JOBS=${JOBS:-2}
WHAT=${1:-all}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

section() { printf '\n======== kernel checks: %s ========\n' "$*"; }

copy_checkout() {   # $1: destination
  mkdir -p "$1"
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
      | xargs -0 cp --parents -t "$1")
  else
    (cd "$ROOT" && tar --exclude='*.so' --exclude='*.c' --exclude=build --exclude=.git -cf - .) | (cd "$1" && tar -xf -)
  fi
}

build() {   # $1: folder; the environment carries the build's switches
  if ! (cd "$1" && "$PY" setup.py build_ext --inplace -j "$JOBS" >build.log 2>&1); then
    tail -n 60 "$1/build.log"
    echo "kernel checks: the build failed (log above)"
    return 1
  fi
  grep -E "^cynet:" "$1/build.log" || true
  echo "build: $(grep -c "warning:" "$1/build.log" || true) compiler warnings (the log: $1/build.log)"
}

"$PY" -c "import Cython, setuptools, numpy" 2>/dev/null \
  || "$PY" -m pip install -q "Cython>=3.0" "setuptools>=77" "numpy>=2.0"

if [ "$WHAT" = debug ] || [ "$WHAT" = all ]; then
  section "debug build (CYNET_DEBUG_BUILD=1): build"
  copy_checkout "$WORK/debug"
  CYNET_DEBUG_BUILD=1 build "$WORK/debug"
  section "debug build: pytest tests/kernels tests/robustness/test_fuzz_kernels.py"
  (cd "$WORK/debug" && PYTHONPATH="$WORK/debug" CYNET_REQUIRE_COMPILED=1 "$PY" -m pytest -q -p no:cacheprovider \
    tests/kernels tests/robustness/test_fuzz_kernels.py)
fi

if [ "$WHAT" = asan ] || [ "$WHAT" = all ]; then
  section "AddressSanitizer build: build"
  LIBASAN=$(gcc -print-file-name=libasan.so)
  if [ ! -e "$LIBASAN" ]; then
    echo "kernel checks: no libasan.so for gcc ($LIBASAN); the AddressSanitizer run is skipped"
  else
    copy_checkout "$WORK/asan"
    (export CFLAGS="-fsanitize=address -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address"
     build "$WORK/asan")
    section "AddressSanitizer build: pytest tests/kernels"
    (cd "$WORK/asan" && PYTHONPATH="$WORK/asan" CYNET_REQUIRE_COMPILED=1 LD_PRELOAD="$LIBASAN" \
      ASAN_OPTIONS=detect_leaks=0 "$PY" -m pytest -q -p no:cacheprovider tests/kernels)
  fi
fi
section "passed ($WHAT)"
