"""Plasticity hypotheses (docs/hypotheses.md) against cases with known answers."""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.engines.numpy_.bptt import bptt_gradient, flatten, sequence_loss
from cortical_gle.protocol import ProtocolError, load_protocol
from cortical_gle.tasks.teacher_student import build_student


def _net(feedback, seed=3, lr=0.05, decay=1.0, optimizer="sgd"):
    spec = NetworkSpec.feedforward([3, 5, 4, 2], tau_m=[0.5, 0.8, 0.3], tau_r=0.1, phi="tanh",
                                   feedback=feedback, feedback_decay=decay)
    net = GLENetwork(spec, dt=0.05, seed=seed)
    net.configure_learning(optimizer, lr=lr)
    return net


def _drive(net, n, rng, learn=True, check=None):
    """``n`` learning steps on random input/targets; ``check(W_used, B_used)`` after each step."""
    net.reset(4)
    for _ in range(n):
        W = [w.copy() for w in net.weights]
        B = [b.copy() for b in net.feedback_weights]
        net.step(rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), learn=learn)
        if check is not None:
            check(W, B)


def _top_down(net, l):
    """The top-down input layer ``l-1`` received in the last step (unpadded), and ``e_l`` of that step."""
    s = net.spec.sizes
    return net.state.top[l - 1, :, : s[l]], net.state.e[l, :, : s[l + 1]]


@pytest.mark.equations
@pytest.mark.parametrize("feedback", ["transpose", "random", "sign_symmetric"])
def test_top_down_signal_is_B_transpose_e(feedback, rng):
    """Exact (rounding only): top_{l-1} = B_l^T e_l with B = W, a fixed random B, or sign(W) of the step's W."""
    net = _net(feedback)
    B0 = [b.copy() for b in net.feedback_weights]
    e_max = []

    def check(W, B):
        for l in (1, 2):
            top, e = _top_down(net, l)
            expected = {"transpose": W[l], "random": B0[l], "sign_symmetric": np.sign(W[l])}[feedback]
            np.testing.assert_allclose(top, e @ expected, rtol=1e-12, atol=1e-14)
            e_max.append(np.abs(e).max())

    _drive(net, 20, rng, check=check)
    assert max(e_max) > 1e-3   # errors actually flowed
    if feedback == "random":
        for b0, b, w in zip(B0, net.feedback_weights, net.weights):
            np.testing.assert_array_equal(b, b0)           # fixed while W learns
            assert np.abs(b - w).max() > 0.1               # and not W


def test_random_feedback_is_seeded_and_checkpointed(tmp_path, rng):
    """Same seed, same B; a different seed, a different B; save/load restores B bit for bit."""
    a, b, c = _net("random", seed=1), _net("random", seed=1), _net("random", seed=2)
    np.testing.assert_array_equal(a.params.B, b.params.B)
    assert not np.array_equal(a.params.B, c.params.B)
    _drive(a, 5, rng)
    a.save(tmp_path / "a.npz")
    np.testing.assert_array_equal(GLENetwork.load(tmp_path / "a.npz").params.B, a.params.B)


@pytest.mark.equations
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_kolen_pollack_feedback_converges_to_W(optimizer, rng):
    """B - W contracts by exactly (1 - lr*lambda) per step (Akrout et al. 2019), whatever the optimizer,
    so after n steps B = W up to (1 - lr*lambda)^n of the initial gap (rounding 1e-12 relative)."""
    lr, lam, n = 0.05, 0.2, 600
    net = _net("kolen_pollack", lr=lr, decay=lam, optimizer=optimizer)
    gap0 = [b - w for b, w in zip(net.feedback_weights, net.weights)]
    assert min(np.abs(g).max() for g in gap0) > 0.1

    def check(W, B):  # the step used the current B: top = B^T e
        top, e = _top_down(net, 2)
        np.testing.assert_allclose(top, e @ B[2], rtol=1e-12, atol=1e-14)

    _drive(net, n, rng, check=check)
    for g0, b, w in zip(gap0, net.feedback_weights, net.weights):
        np.testing.assert_allclose(b - w, (1 - lr * lam) ** n * g0, rtol=1e-9, atol=1e-13)
        assert np.abs(b - w).max() < 3e-3 * np.abs(g0).max()


def test_unknown_hypothesis_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown feedback hypothesis 'symmetric'.*kolen_pollack"):
        NetworkSpec.feedforward([1, 2, 1], 1.0, 0.1, feedback="symmetric")
    with pytest.raises(ProtocolError, match="network.feedback"):
        load_protocol("lagnet", [("network.feedback", "symmetric")])
    spec = NetworkSpec.feedforward([1, 2, 1], 1.0, 0.1, feedback="random")
    with pytest.raises(ValueError, match="brian2 engine implements only feedback 'transpose'.*Lillicrap"):
        spec.require_exact_feedback("brian2")


def test_hypothesis_applies_to_gle_methods_only():
    """The protocol's feedback setting reaches GLE students; baselines keep exact transport (B = W)."""
    cfg, _, _ = load_protocol("lagnet", [("network.feedback", "random")], quick=True)
    assert build_student(cfg, 0, hypothesis=True).spec.feedback == "random"
    assert build_student(cfg, 0).spec.feedback == "transpose"


@pytest.mark.equations
def test_tau_r_gradient_bptt_matches_finite_differences():
    """The exact tau_r gradient (BPTT adjoint) against central differences (h = 1e-6: error ~ h^2)."""
    spec = NetworkSpec.feedforward([2, 3, 2], tau_m=[[1.0, 0.5, 2.0], 0.7], tau_r=[[0.2, 0.4, 0.3], 0.5])
    net = GLENetwork(spec, dt=0.1, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 2, 2)), rng.standard_normal((40, 2, 2))
    g = bptt_gradient(net, x, y)
    for l, i in ((0, 1), (1, 0)):
        arr, h = net.params.tau_r, 1e-6
        old = arr[l, i]
        arr[l, i] = old + h
        lp = sequence_loss(net, x, y)
        arr[l, i] = old - h
        lm = sequence_loss(net, x, y)
        arr[l, i] = old
        assert g["tau_r"][l][i] == pytest.approx((lp - lm) / (2 * h), rel=1e-6, abs=1e-9)


@pytest.mark.equations
def test_gle_tau_r_gradient_tracks_bptt():
    """GLE's local tau_r rule (-e du/dt) against the exact gradient where GLE is accurate
    (time constants short against the input, as test_gradients' W check): cosine > 0.9."""
    from cortical_gle.signals import teacher_targets

    dt, T = 0.01, 3000
    sizes, tau_m = [2, 3, 1], 0.1
    t = np.arange(T) * dt
    rng = np.random.default_rng(0)
    x = np.zeros((T, 1, 2))
    for i in range(2):
        for _ in range(4):
            x[:, 0, i] += np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi)) / 2
    teacher = GLENetwork(NetworkSpec.feedforward(sizes, tau_m, 0.05, bias=False), dt, seed=100)
    y = teacher_targets(teacher, x)
    net = GLENetwork(NetworkSpec.feedforward(sizes, tau_m, [[0.02, 0.08, 0.04], 0.1], bias=False), dt, seed=0)
    gle, exact = net.accumulate_gradients(x, y), bptt_gradient(net, x, y)
    a, b = flatten(gle, ("tau_r",)), flatten(exact, ("tau_r",))
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9
