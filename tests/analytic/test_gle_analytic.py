"""GLE against closed-form results (linear phi or LE limits): the special cases of
docs/model.md#continuous-model."""
import numpy as np
import pytest
import quantities as pq

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.tasks import phase_advance
from cortical_gle import theory

pytestmark = pytest.mark.equations  # all fast: part of the mutation-testing selection


def static_forward(net, x):
    h = x
    for W, b, layer in zip(net.weights, net.biases, net.spec.layers):
        h = W @ h + b
        h = np.tanh(h) if layer.phi == "tanh" else h
    return h


def test_latent_equilibrium_has_no_lag():
    """tau_r = tau_m: a constant input reaches layer l after l+1 steps, exactly phi(W x + b)."""
    tau = np.array([0.3, 1.0, 2.5, 7.0])
    spec = NetworkSpec.feedforward([3, 4, 4, 2], tau_m=[tau, tau[::-1], 1.3], tau_r=[tau, tau[::-1], 1.3])
    net = GLENetwork(spec, dt=0.1, seed=4)
    x = np.array([0.5, -1.0, 2.0])
    net.reset(1)
    for _ in range(3):
        net.step(x[None])
    np.testing.assert_allclose(net.output[0], static_forward(net, x), rtol=1e-13, atol=1e-14)
    # the output is at equilibrium: more steps do not change it
    net.step(x[None])
    np.testing.assert_allclose(net.output[0], static_forward(net, x), rtol=1e-13, atol=1e-14)


def test_membrane_relaxes_with_tau_m():
    """Leaky integrator (tau_r = dt): step response u_n = 1 - (1 - dt/tau_m)^n (Euler, exact)."""
    dt, tau_m = 0.01, 0.5
    spec = NetworkSpec.feedforward([1, 1], tau_m=tau_m, tau_r=dt, output_phi="linear", bias=False)
    net = GLENetwork(spec, dt, weights=[np.ones((1, 1))])
    out = net.run(np.ones((300, 1, 1)), record=("u",))["u"][:, 0, 0, 0]
    n = np.arange(1, 301)
    np.testing.assert_allclose(out, 1 - (1 - dt / tau_m) ** n, rtol=1e-12)
    # and it approximates the continuous 1 - exp(-t/tau_m) to O(dt/tau_m)
    assert np.max(np.abs(out - (1 - np.exp(-n * dt / tau_m)))) < dt / tau_m


def euler_transfer(f_hz, dt_ms, tau_m, tau_r):
    r"""Exact frequency response of one linear neuron under the engine's Euler step.

    With :math:`a = dt/\tau_m`, :math:`\rho = \tau_r/\tau_m`, the step
    :math:`u_{n+1} = u_n + a (x_n - u_n)` and the output recorded at step ``n``,
    :math:`r_n = u_n + \rho (x_n - u_n)`, give

    .. math:: H(z) = \rho + (1-\rho)\,\frac{a}{z - 1 + a}, \qquad z = e^{i\omega dt}.
    """
    z = np.exp(1j * 2 * np.pi * np.asarray(f_hz) * 1e-3 * dt_ms)
    a, rho = dt_ms / tau_m, tau_r / tau_m
    return rho + (1 - rho) * a / (z - 1 + a)


def test_phase_and_gain_match_theory_at_small_dt():
    r"""Linear neurons, dt = 0.01 ms: phase and gain are those of the Euler scheme, hence of theory.

    Two bounds.  (1) Against the exact discrete transfer function of the
    Euler step (:func:`euler_transfer`) only the lock-in fit's residual
    transient remains (measured <= 0.003 deg, 1e-7 in gain): tolerance 0.01 deg
    and 1e-6.  (2) Against continuous theory :math:`\arctan\omega\tau_r -
    \arctan\omega\tau_m`, forward Euler lags by at most :math:`\omega dt/2`
    (0.36 deg at 200 Hz), so each frequency gets exactly that bound (+ 0.01 deg).
    Pairing the output with the wrong step shifts the phase by a whole
    :math:`\omega dt` (0.72 deg at 200 Hz) and fails both.
    """
    cfg = phase_advance.Config(task="phase-advance", dt="0.01 ms",
                               neurons=[{"tau_m": "10 ms", "tau_r": "2 ms"}, {"tau_m": "20 ms", "tau_r": "0.01 ms"},
                                        {"tau_m": "5 ms", "tau_r": "5 ms"}],
                               frequencies=["5 Hz", "20 Hz", "80 Hz", "200 Hz"], settle=5, cycles=2)
    t, x, r = phase_advance.simulate(cfg)
    phase, gain = phase_advance.measure(cfg, t, x, r)
    f = np.array(cfg.frequencies)
    euler_bound = np.degrees(2 * np.pi * f * 1e-3 * cfg.dt / 2)
    for i, n in enumerate(cfg.neurons):
        H = euler_transfer(f, cfg.dt, n.tau_m, n.tau_r)
        np.testing.assert_allclose(phase[i], np.degrees(np.angle(H)), atol=0.01)
        np.testing.assert_allclose(gain[i], np.abs(H), rtol=1e-6)
        ph_th = theory.phase_advance(f * pq.Hz, n.tau_m * pq.ms, n.tau_r * pq.ms).magnitude
        g_th = theory.gain(f * pq.Hz, n.tau_m * pq.ms, n.tau_r * pq.ms).magnitude
        assert np.all(np.abs(phase[i] - ph_th) <= euler_bound + 0.01), (phase[i] - ph_th, euler_bound)
        np.testing.assert_allclose(gain[i], g_th, rtol=0.01)
    # the lag is real: the leaky integrator at 80 Hz lags by ~84 degrees
    assert phase[1, 2] < -80


def test_single_weight_update_by_hand():
    """One LE neuron, SGD: after two steps the update is lr * beta * (y - r) * x, as computed by hand."""
    spec = NetworkSpec.feedforward([1, 1], tau_m=1.0, tau_r=1.0, output_phi="linear", beta=2.0,
                                   prospective_errors=False)
    net = GLENetwork(spec, 0.1, weights=[np.array([[0.5]])], biases=[np.array([0.1])])
    net.configure_learning("sgd", lr=0.01)
    net.reset(1)
    x, y = 2.0, 3.0
    net.step([[x]], target=[[y]], learn=True)  # r(0) = 0: error beta*(y - 0), no phi' yet (stored 0)
    w1, b1 = net.weights[0][0, 0], net.biases[0][0]
    assert (w1, b1) == (0.5, 0.1)              # phi'(u_pro) starts at zero: no error passes first
    r1 = net.output[0, 0]
    assert r1 == pytest.approx(0.5 * x + 0.1)  # LE: no lag
    net.step([[x]], target=[[y]], learn=True)
    e = 2.0 * (y - r1) * 1.0
    assert net.weights[0][0, 0] == pytest.approx(0.5 + 0.01 * e * x, rel=1e-14)
    assert net.biases[0][0] == pytest.approx(0.1 + 0.01 * e, rel=1e-14)
