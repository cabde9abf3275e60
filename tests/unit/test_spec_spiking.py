"""The spiking switch of a NetworkSpec: stored, validated, and refused by rate-only engines by name."""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine


def _spec(**kw):
    return NetworkSpec.feedforward([2, 3, 1], tau_m=10.0, tau_r=2.0, phi="sigmoid", output_phi="sigmoid", **kw)


def test_spiking_and_r_max_round_trip_through_dict():
    spec = _spec(spiking=True, r_max=350.0)
    d = spec.to_dict()
    assert d["spiking"] is True and d["r_max"] == 350.0
    again = NetworkSpec.from_dict(d)
    assert again.spiking is True and again.r_max == 350.0 and again.to_dict() == d
    # files written before the switch existed read as rate-based
    old = {k: v for k, v in d.items() if k not in ("spiking", "r_max")}
    assert NetworkSpec.from_dict(old).spiking is False


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf, "200", True])
def test_bad_r_max_is_named(bad):
    with pytest.raises(ValueError, match="r_max"):
        _spec(spiking=True, r_max=bad)


def test_bad_spiking_flag_is_named():
    with pytest.raises(ValueError, match="spiking must be true or false"):
        _spec(spiking="yes")


def test_numpy_engine_refuses_a_spiking_spec():
    with pytest.raises(ValueError, match="numpy engine is rate-based.*spiking"):
        get_engine("numpy").build(_spec(spiking=True), 0.1)
