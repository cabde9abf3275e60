"""The spiking NEST variant (spec.spiking) on the real NEST 3.10 and the NESTML-built module.

Every check compares with an analytic result or with the numpy engine (the teacher);
the tolerances follow from the Poisson statistics stated in each docstring.  The
NESTML module is built once into the user cache by the session fixture
(``cortical-gle build-nest``).
"""
from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from cortical_gle.analysis.phase import spike_phase
from cortical_gle.engines import get_engine
from cortical_gle.signals import ornstein_uhlenbeck
from cortical_gle.spec import NetworkSpec

pytestmark = pytest.mark.nest

DT = 0.1  # ms


@pytest.fixture(scope="session")
def nestml_module():
    from cortical_gle.engines.nest_.build import build_nest
    return build_nest(nestml=True)


def _spec(sizes=(2, 3, 1), **kw):
    kw = {"tau_m": [10.0, 20.0][: len(sizes) - 1], "tau_r": 1.0, "phi": "sigmoid", "output_phi": "sigmoid",
          "spiking": True, "r_max": 500.0, **kw}
    return NetworkSpec.feedforward(list(sizes), **kw)


# -- phase advance ------------------------------------------------------------------------------------------

def phase_leads(tau_m, tau_r, freqs, n_neurons, duration, seed=0):
    """Measured phase lead (deg) of the population rate, its standard error and the theory, per frequency.

    Each of ``n_neurons`` neurons per frequency is driven by ``I(t) = A_f sin(w t)`` with
    ``A_f = 1 / gain(f)`` (so that ``u_pro`` swings by +-1 at every frequency and the rate
    modulation depth stays near 0.47); the neurons see the drive one connection delay
    ``d = dt`` late, so the lead relative to the drive they receive is the spike phase
    plus ``w d``.  The first 50 ms (5 tau_m) are transient and skipped.
    """
    from cortical_gle.engines.nest_.spiking import sinusoid_driven_spikes
    w = 2 * np.pi * np.asarray(freqs) * 1e-3
    gain = np.hypot(1, w * tau_r) / np.hypot(1, w * tau_m)
    trains, delay = sinusoid_driven_spikes(tau_m, tau_r, freqs, 1.0 / gain, n_neurons, duration, dt=DT,
                                           r_max=200.0, seed=seed)
    rows = []
    for f, wi in zip(freqs, w):
        ph, depth, n, se = spike_phase(trains[f], f * pq.Hz, t_start=50 * pq.ms)
        rows.append((float(ph) + np.degrees(wi * delay), float(se),
                     np.degrees(np.arctan(wi * tau_r) - np.arctan(wi * tau_m)), n))
    return rows


@pytest.mark.parametrize("tau_m,tau_r", [(10.0, 2.0), (5.0, 15.0)])
def test_population_phase_matches_theory(nestml_module, tau_m, tau_r):
    """Phase of the population rate vs atan(w tau_r) - atan(w tau_m) within 5 deg, 1-50 Hz.

    Error bound: 100 neurons at ~100 Hz for 2 s give n ~ 2e4 spikes per frequency; the
    phase estimate's standard error is sqrt(2/n)/m ~ 1.2 deg (m ~ 0.47, checked below
    to be under 1.4 deg), so 5 deg is > 3.5 standard errors; the zero-order hold of the
    drive on the 0.1 ms grid adds at most w dt/2 = 0.9 deg at 50 Hz.
    """
    freqs = [1.0, 5.0, 10.0, 20.0, 50.0]
    for f, (lead, se, theory, n) in zip(freqs, phase_leads(tau_m, tau_r, freqs, 100, 2050.0)):
        assert se < 1.4, f"{f} Hz: only {n} spikes, standard error {se:.2f} deg"
        assert abs(lead - theory) < 5.0, f"{f} Hz: lead {lead:.2f} deg, theory {theory:.2f} deg"


@pytest.mark.slow
def test_population_phase_full_range(nestml_module):
    """As above, 7 frequencies x 3 neuron types (lag, lead, Latent Equilibrium), 200 neurons, 4 s."""
    freqs = [1.0, 2.0, 5.0, 10.0, 20.0, 35.0, 50.0]
    worst = 0.0
    for tau_m, tau_r in [(10.0, 2.0), (5.0, 15.0), (10.0, 10.0)]:
        for f, (lead, se, theory, n) in zip(freqs, phase_leads(tau_m, tau_r, freqs, 200, 4050.0, seed=1)):
            print(f"tau_m={tau_m} tau_r={tau_r} f={f:g} Hz: lead {lead:.2f} theory {theory:.2f} se {se:.2f} n {n}")
            worst = max(worst, abs(lead - theory))
            assert abs(lead - theory) < 5.0
    print(f"worst deviation {worst:.2f} deg")


# -- spikes ------------------------------------------------------------------------------------------------

def test_spike_trains_are_neo_and_fire_at_r_max_phi(nestml_module):
    """Recorded spike trains are Neo SpikeTrains, and each cell fires at r_max * phi(u_pro).

    Constant input x = 0.6: the output cell's spike count over T must match
    r_max * sum_t r_out(t) dt (its own recorded phi(u_pro)); Poisson count, so the
    tolerance is 4 sqrt(expected).  The input cells fire at r_max * x (same bound).
    """
    spec = _spec((2, 3, 1))
    net = get_engine("nest").build(spec, DT, seed=1)
    steps = 20000
    x = np.full((steps, 1, 2), 0.6)
    out = net.run(x, record=("r_out", "spikes", "error_spikes"))
    assert len(out["spikes"]) == 2 and len(out["spikes"][0]) == 3
    st = out["spikes"][-1][0]
    assert isinstance(st, neo.SpikeTrain) and st.t_stop == steps * DT * pq.ms
    expected = spec.r_max * 1e-3 * out["r_out"][:, 0, 0].sum() * DT
    assert abs(len(st) - expected) < 4 * np.sqrt(expected), (len(st), expected)
    plus, minus = out["error_spikes"][-1]
    assert isinstance(plus[0], neo.SpikeTrain) and isinstance(minus[0], neo.SpikeTrain)
    # no target: the output error is -beta r phi'(u_pro) < 0, so only the "-" interneuron fires
    assert len(plus[0]) == 0 and len(minus[0]) > 0


# -- refusals ----------------------------------------------------------------------------------------------

def test_what_the_spiking_variant_cannot_express_is_named(nestml_module):
    with pytest.raises(ValueError, match="layer 0 has phi 'tanh'"):
        get_engine("nest").build(_spec(phi="tanh"), DT)
    with pytest.raises(ValueError, match="loss 'mse' only"):
        get_engine("nest").build(_spec(loss="cross_entropy"), DT)
    with pytest.raises(ValueError, match=r"r_max \* dt = 2 > 1"):
        get_engine("nest").build(_spec(r_max=20000.0), DT)
    net = get_engine("nest").build(_spec(), DT)
    with pytest.raises(ValueError, match="learn_tau"):
        net.configure_learning("sgd", lr=1e-3, learn_tau=True)
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        net.configure_learning("adam", lr=1e-3)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*-0.5"):
        net.run(np.full((10, 1, 2), -0.5))
    with pytest.raises(ValueError, match="batch size 1"):
        net.run(np.full((10, 2, 2), 0.5))
    bad = get_engine("nest").build(_spec(), DT, neuron_params={"tau_q": 1.0})
    with pytest.raises(ValueError, match="tau_q"):
        bad.run(np.full((10, 1, 2), 0.5))


def test_second_nestml_build_reuses_the_cache(nestml_module):
    """``build_nest(nestml=True)`` again finds both cached modules without running NESTML or a compiler."""
    import time

    from cortical_gle.engines.nest_.build import build_nest
    before = nestml_module["nestml"].stat().st_mtime_ns
    t0 = time.perf_counter()
    again = build_nest(nestml=True)
    assert time.perf_counter() - t0 < 1.0
    assert again["nestml"] == nestml_module["nestml"] and again["nestml"].stat().st_mtime_ns == before
