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
    modulation depth stays near 0.47); a spike stamped ``t`` was drawn with the drive at
    ``t - d``, ``d = 2 dt`` (connection delay, and the stamp at the end of the step), so the
    lead relative to the drive the neurons receive is the spike phase plus ``w d``.  The
    first 50 ms (5 tau_m) are transient and skipped.
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
@pytest.mark.long
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


# -- errors and learning ------------------------------------------------------------------------------------

def test_hidden_error_is_the_backpropagated_output_error(nestml_module):
    """A hidden cell's error equals phi'(u_pro) W2^T e_2 (docs/model.md#continuous-model), with e_2
    carried by the output's +/- error interneurons as spikes.

    Output target a slow sinusoid (period 190 ms), W1 = 0.2, W2 = 1, 5 s.  Signals are
    averaged over 50 ms (the prospective error filter is ~1 there, and the 10 ms
    top-down trace delays by less than 3 % of a period); the spike noise left after
    averaging gives a correlation of ~0.85 and a regression slope within a few % of 1
    (measured 0.99), so 0.8-1.2 and correlation > 0.6 leave room for the noise while a
    wrong scale of the top-down pathway (e.g. the gain g = 10 not divided out) fails.
    """
    n, steps = 5, 50000
    spec = _spec((n, n, 1))
    net = get_engine("nest").build(spec, DT, seed=0, weights=[np.full((n, n), 0.2), np.full((1, n), 1.0)],
                                   biases=[np.zeros(n), np.zeros(1)])
    rng = np.random.default_rng(0)
    ou = ornstein_uhlenbeck(steps, 1, 1, DT, tau=20.0, sigma=2.0, rng=rng)
    x = np.repeat(1 / (1 + np.exp(-ou)), n, axis=2)
    y = np.clip(0.5 + 0.4 * np.sin(np.arange(steps) * DT / 30.0), 0, 1)[:, None, None]
    rec = net.run(x, y, record=("r", "e"))
    r1, e1, e2 = rec["r"][:, 0, 0, :n], rec["e"][:, 0, 0, :n], rec["e"][:, 1, 0, 0]
    predicted = r1 * (1 - r1) * 1.0 * e2[:, None]
    box = np.ones(500) / 500

    def smooth(a):
        return np.convolve(a, box, "valid")[1000:]

    for i in range(n):
        a, b = smooth(predicted[:, i]), smooth(e1[:, i])
        slope = np.polyfit(a, b, 1)[0]
        corr = np.corrcoef(a, b)[0, 1]
        assert 0.8 < slope < 1.2 and corr > 0.6, (i, slope, corr)


# -- learning ----------------------------------------------------------------------------------------------

def lagline_like(seed, n=20, t_train=30.0, lr=5e-3, w=5.0, r_max=1000.0):
    """A LagLine-like teacher task; returns the student's test loss before and after learning, and the floor.

    LagLine (docs/model.md#tasks-and-published-numbers) is a chain of two GLE neurons with
    tau_m = (1, 2), tau_r = 0.1; here in ms x 10 (tau_m = 10, 20 ms, tau_r = 1 ms, dt = 0.1 ms)
    and each neuron a population of ``n`` (input too), so that population rates average the
    Poisson noise: teacher W_1 = w/n, W_2 = w/n, b = -w/2 (numpy engine, the same chain as
    an n-wide network), input x = sigmoid(OU), OU with correlation time 20 ms and sd 2.
    The student starts from W ~ U(0, 1)/n, b = 0 and learns W and b online with the
    spiking network (r_max = 1000 Hz), lr for 2/3 of ``t_train`` seconds then lr/10.  Losses are the MSE of
    the student's rate phi(u_pro) against the teacher on a held-out 2 s sequence (the
    first 50 ms skipped); ``floor`` is that loss with the teacher's own weights (the
    Poisson noise the student cannot remove).
    """
    dt = DT
    kw = {"tau_m": [10.0, 20.0], "tau_r": 1.0, "phi": "sigmoid", "output_phi": "sigmoid", "beta": 1.0}
    teacher_spec = NetworkSpec.feedforward([n, n, 1], **kw)
    spec = NetworkSpec.feedforward([n, n, 1], spiking=True, r_max=r_max, **kw)
    rng = np.random.default_rng(seed)

    def inputs(seconds):
        ou = ornstein_uhlenbeck(int(round(seconds * 1e3 / dt)), 1, 1, dt, tau=20.0, sigma=2.0, rng=rng)
        return np.repeat(1 / (1 + np.exp(-ou)), n, axis=2)

    w_teacher = [np.full((n, n), w / n), np.full((1, n), w / n)]
    b_teacher = [np.full(n, -w / 2), np.full(1, -w / 2)]
    w0 = [rng.uniform(0, 1, (n, n)) / n, rng.uniform(0, 1, (1, n)) / n]
    b0 = [np.zeros(n), np.zeros(1)]
    teacher = get_engine("numpy").build(teacher_spec, dt, weights=w_teacher, biases=b_teacher)
    x, x_test = inputs(t_train), inputs(2.0)
    y, y_test = (teacher.run(s, record=("r_out",))["r_out"] for s in (x, x_test))

    def test_loss(weights, biases):
        net = get_engine("nest").build(spec, dt, seed=seed + 100, weights=weights, biases=biases)
        return float(net.run(x_test, y_test, record=("loss",))["loss"][500:].mean())

    before = test_loss(w0, b0)
    student = get_engine("nest").build(spec, dt, seed=seed, weights=w0, biases=b0)
    split = 2 * len(x) // 3
    student.configure_learning("sgd", lr=lr)
    student.run(x[:split], y[:split], learn=True, record=())
    student.configure_learning("sgd", lr=lr / 10)
    student.run(x[split:], y[split:], learn=True, record=(), reset=False)
    after = test_loss(student.weights, student.biases)
    return before, after, test_loss(w_teacher, b_teacher)


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spiking_student_learns_lagline_like_teacher(nestml_module, seed):
    """The loss falls at least 10x from its initial value (60 s of online learning per seed).

    The bound is the issue's acceptance figure; it is reachable because the floor
    (teacher weights in the spiking network, Poisson noise only) lies ~20x below the
    initial loss.
    """
    before, after, floor = lagline_like(seed, t_train=60.0)
    print(f"seed {seed}: test loss {before:.5f} -> {after:.5f} ({before / after:.1f}x), floor {floor:.5f}")
    assert before / after >= 10.0


def test_output_layer_learns_a_teacher_quickly(nestml_module):
    """Short default-suite learning check: one spiking layer (20 inputs -> 1 output) learns a
    numpy-engine teacher (W = 5/20, b = -2.5, tau_m = 20 ms, tau_r = 1 ms) online in 8 s.

    The test loss (held-out 2 s) must fall at least 5x.  Measured: ~15x after 10 s at
    r_max = 500 Hz, with a floor (teacher weights in the spiking network) ~30x below the
    initial loss; 5x at 8 s leaves a margin for the Poisson noise of one seed.  The
    two-layer chain (hidden errors through the +/- interneurons) is the slow test below.
    """
    n, dt = 20, DT
    kw = {"tau_m": 20.0, "tau_r": 1.0, "phi": "sigmoid", "output_phi": "sigmoid"}
    rng = np.random.default_rng(3)

    def inputs(seconds):
        ou = ornstein_uhlenbeck(int(seconds * 1e4), 1, 1, dt, tau=20.0, sigma=2.0, rng=rng)
        return np.repeat(1 / (1 + np.exp(-ou)), n, axis=2)

    teacher = get_engine("numpy").build(NetworkSpec.feedforward([n, 1], **kw), dt,
                                        weights=[np.full((1, n), 5.0 / n)], biases=[np.full(1, -2.5)])
    x, x_test = inputs(8.0), inputs(2.0)
    y, y_test = (teacher.run(s, record=("r_out",))["r_out"] for s in (x, x_test))
    spec = NetworkSpec.feedforward([n, 1], spiking=True, r_max=500.0, **kw)
    w0, b0 = [rng.uniform(0, 1, (1, n)) / n], [np.zeros(1)]

    def test_loss(weights, biases):
        net = get_engine("nest").build(spec, dt, seed=7, weights=weights, biases=biases)
        return float(net.run(x_test, y_test, record=("loss",))["loss"][500:].mean())

    student = get_engine("nest").build(spec, dt, seed=3, weights=w0, biases=b0)
    student.configure_learning("sgd", lr=5e-3)
    student.run(x, y, learn=True, record=())
    before, after = test_loss(w0, b0), test_loss(student.weights, student.biases)
    print(f"one layer: test loss {before:.5f} -> {after:.5f} ({before / after:.1f}x)")
    assert before / after >= 5.0, (before, after)
