"""NEST and numba's threads in one process: NEST first, then a numba parallel kernel, then ResetKernel.

Before the fix this segfaulted: NEST's wheel carries its own libgomp and numba's ``omp``
threading layer loads the system's (found through ``pytest tests/unit tests/cross_engine``,
where an ephys test started NEST and a sweep test called ``numba.set_num_threads``).
Run in a subprocess, so a crash fails this test instead of ending the session.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("nest")

SCRIPT = textwrap.dedent("""
    import numba
    from cortical_gle.engines.nest_.network import reset_kernel
    nest = reset_kernel()
    nest.Create("iaf_psc_alpha"); nest.Simulate(5.0)
    numba.set_num_threads(1)                       # launches numba's threading layer
    print("layer", numba.threading_layer())
    reset_kernel(); nest.Create("iaf_psc_alpha"); nest.Simulate(5.0)
    print("reset ok")
""")


def test_nest_first_then_numba_threads_then_reset_kernel():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, f"exit {res.returncode} (-11: segfault)\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    assert "reset ok" in res.stdout and "layer workqueue" in res.stdout
