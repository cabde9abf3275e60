import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")
# Brian2 engine: tests that do not name a target (the conformance suite) use Brian2's numpy target, which
# needs no compilation; both targets run the same generated statements, and tests/brian2 checks the
# agreement with the numpy engine once per target the machine has, the compiled 'cython' one included
# (its first run on a fresh machine compiles ~45 code objects, seconds each).
os.environ.setdefault("CORTICAL_GLE_BRIAN2_TARGET", "numpy")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
