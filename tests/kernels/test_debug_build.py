"""The debug build (CYNET_DEBUG_BUILD=1) checks the kernels' raw-pointer accesses.

Its loops index through CY_AT / CY_SPAN (cynet_check.h), so an access outside a buffer aborts with
"out of bounds" and the place instead of reading or corrupting memory. The hook
conv._debug_im2col_row runs one im2col row with its row index unchecked; only a debug build lets it
run, and there an index past the batch must abort (in a subprocess). tools/kernel_checks.sh builds
the debug variant and runs tests/kernels on it, so this test runs there; in a normal build it
checks that the hook refuses to run.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cynet

try:
    from cynet._kernels import conv
except ImportError:  # pragma: no cover - only with CYNET_ALLOW_UNCOMPILED
    conv = None
    if os.environ.get("CYNET_ALLOW_UNCOMPILED", "") in ("", "0"):
        raise

pytestmark = pytest.mark.skipif(conv is None, reason="compiled conv kernel not built")
DEBUG = conv is not None and conv._CHECKED
GEOMETRY = (3, 3, 1, 1, 1, 1, 1, 1, 1, 1)   # KH, KW, pt, pb, pl, pr, sh, sw, dh, dw: OH = H


@pytest.mark.skipif(DEBUG, reason="a debug build runs the hook")
def test_hook_refuses_to_run_in_a_normal_build():
    with pytest.raises(RuntimeError, match="CYNET_DEBUG_BUILD"):
        conv._debug_im2col_row(np.ones((1, 4, 4, 2)), 0, *GEOMETRY)


@pytest.mark.skipif(not DEBUG, reason="not a CYNET_DEBUG_BUILD=1 build")
def test_debug_build_runs_valid_rows():
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3))
    cols = conv.im2col(x, *GEOMETRY)
    for r in (0, 3, 7):
        np.testing.assert_array_equal(conv._debug_im2col_row(x, r, *GEOMETRY), cols[r * 5:(r + 1) * 5])


@pytest.mark.skipif(not DEBUG, reason="not a CYNET_DEBUG_BUILD=1 build")
def test_debug_build_aborts_at_an_overrun():
    code = textwrap.dedent(f"""
        import numpy as np
        from cynet._kernels import conv
        x = np.ones((2, 4, 5, 3))
        conv._debug_im2col_row(x, 2 * 4, *{GEOMETRY!r})   # row 8 of 8: one image past the batch
        print("not stopped")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(cynet.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "not stopped" not in out.stdout
    assert "out of bounds" in out.stderr and "conv" in out.stderr, out.stderr
