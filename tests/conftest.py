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


def pytest_addoption(parser):
    parser.addoption("--run-long", action="store_true", default=False,
                     help="also run the tests marked 'long' (acceptance runs of minutes each, see docs/testing.md)")


def pytest_collection_modifyitems(config, items):
    # 'long' tests (minutes each on 2 cores: the spiking NEST learning and full phase runs) would take the
    # default suite past its 20-minute budget; they run with --run-long (or CORTICAL_GLE_RUN_LONG=1)
    if config.getoption("--run-long") or os.environ.get("CORTICAL_GLE_RUN_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long acceptance run: use --run-long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
