"""Focused checks of the equation modules (dynamics, losses, BPTT, phi) at their edges.

Part of the mutation-testing selection (``-m equations``, docs/testing.md):
each test pins behaviour that the end-to-end comparisons in this folder do
not reach, against a closed form, a finite difference or another code path.
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.engines.numpy_ import dynamics
from cortical_gle.engines.numpy_.bptt import bptt_gradient, flatten, forward_record, sequence_loss
from cortical_gle.engines.numpy_.dynamics import DivergenceError, GLEState, gle_step
from cortical_gle.engines.numpy_.losses import check_target, loss_and_dloss, softmax
from cortical_gle.phi import PHIS, get_phi

pytestmark = pytest.mark.equations

X = np.linspace(-4, 4, 81)


@pytest.mark.parametrize("name", sorted(PHIS))
def test_phi_and_derivative_against_closed_forms(name):
    """fn against its expression string (the other engines' definition), prime against central differences (h^2)."""
    phi = get_phi(name)
    ns = {"x": X, "tanh": np.tanh, "exp": np.exp, "log": np.log}
    np.testing.assert_allclose(phi(X), eval(phi.expr, ns), rtol=1e-12, atol=1e-12)
    h = 1e-5
    x = X[np.abs(X) > 1e-3]  # relu has a kink at 0
    fd = (phi(x + h) - phi(x - h)) / (2 * h)
    np.testing.assert_allclose(phi.derivative(x), fd, rtol=1e-8, atol=1e-9)
    assert phi.zero_at_zero == (phi(np.zeros(1))[0] == 0.0)


def test_relu_derivative_at_the_kink_is_zero():
    """phi'(0) = 0 for relu (the subgradient convention of the paper's code: x > 0)."""
    assert get_phi("relu").derivative(np.zeros(1))[0] == 0.0


@pytest.mark.parametrize("bad", ["nope", ["tanh"], None])
def test_unknown_phi_names_the_known_ones(bad):
    with pytest.raises(ValueError, match=r"^unknown phi .*; known transfer functions: linear, relu, sigmoid, softplus, tanh$"):
        get_phi(bad)


def test_softmax_is_stable_and_normalised():
    r = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]])
    p = softmax(r.copy())
    np.testing.assert_allclose(p[0, :2], np.exp([0, -1]) / (1 + np.exp(-1)), rtol=1e-14)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-14)


def test_cross_entropy_loss_and_gradient():
    """L = -log softmax(r)_y (batch mean), dL/dr = softmax(r) - onehot(y); a label with p = 0 gives a finite loss."""
    r = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -1.0]])
    y = np.array([2, 0])
    loss, d = loss_and_dloss("cross_entropy", r.copy(), y)
    p = np.exp(r) / np.exp(r).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[[0, 1], y])), rel=1e-14)
    np.testing.assert_allclose(d, p - np.eye(3)[y], rtol=1e-13, atol=1e-15)
    loss, _ = loss_and_dloss("cross_entropy", np.array([[0.0, 2000.0]]), np.array([0]))
    assert np.isfinite(loss) and loss == pytest.approx(-np.log(np.finfo(float).tiny))


def test_mse_loss_and_gradient():
    """L = 1/2 |r - y|^2 summed over outputs, meaned over the batch (3 samples, 2 outputs: the axes differ)."""
    r, y = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    loss, d = loss_and_dloss("mse", r, y)
    assert loss == pytest.approx(0.5 * (5 + 5 + 9) / 3, rel=1e-15)
    np.testing.assert_array_equal(d, r - y)


@pytest.mark.parametrize("kind,target,match", [
    ("mse", np.zeros((2, 3)), r"^target must have shape \(batch, n_out\) = \(2, 2\), got \(2, 3\)$"),
    ("mse", np.array([[0.0, np.nan], [0, 0]]), "^target contains NaN or inf$"),
    ("cross_entropy", np.array([0.0, 1.0]), r"^cross-entropy target must be integer labels of shape \(2,\), got float64 \(2,\)$"),
    ("cross_entropy", np.array([[0, 1]]), r"^cross-entropy target must be integer labels of shape \(2,\), got int64 \(1, 2\)$"),
    ("cross_entropy", np.array([0, 2]), r"^labels must lie in \[0, 2\), got 0..2$"),
    ("cross_entropy", np.array([-1, 1]), r"^labels must lie in \[0, 2\), got -1..1$"),
])
def test_bad_targets_are_named(kind, target, match):
    with pytest.raises(ValueError, match=match):
        check_target(kind, target, 2, 2)


def test_edge_labels_are_accepted():
    np.testing.assert_array_equal(check_target("cross_entropy", [0, 1], 2, 2), [0, 1])
    assert check_target("cross_entropy", np.zeros(0, dtype=int), 0, 2).size == 0


def test_divergence_names_layer_and_step():
    spec = NetworkSpec.feedforward([1, 2, 2, 1], tau_m=1.0, tau_r=0.5)
    net = GLENetwork(spec, 0.1, seed=0)
    net.weights[1][...] = 1e308
    net.reset(1)
    net.state.R[1, 0, :2] = 1.0  # W r overflows in layer 1 only
    net.steps_done = 3
    with pytest.raises(DivergenceError, match="^the network diverged at step 3: layer 1 has a non-finite prospective potential "
                       r"\(lower the learning rate, beta or gamma, or check the input\)$") as err:
        net.step([[1.0]])
    assert (err.value.layer, err.value.step) == (1, 3)
    assert str(DivergenceError(2)).startswith("the network diverged: layer 2 has")


def test_divergence_of_one_sample_is_caught_by_the_parallel_kernel():
    """Above PARALLEL_MIN_SIZE the kernel counts non-finite potentials across threads (a prange reduction).

    One sample of 2731 (3 layers x 2 units: 16386 elements, the parallel kernel) overflows in
    layer 1.  With the JIT on, a count that is not a reduction (``n_bad = 1``) comes back 0 from
    the threads and the divergence would pass unnoticed; the small-size test above cannot see that.
    """
    spec = NetworkSpec.feedforward([1, 2, 2, 1], tau_m=1.0, tau_r=0.5)
    net = GLENetwork(spec, 0.1, seed=0)
    net.weights[1][...] = 1e308
    batch = dynamics.PARALLEL_MIN_SIZE // (3 * 2) + 1
    net.reset(batch)
    assert net.state.u.size >= dynamics.PARALLEL_MIN_SIZE
    net.state.R[1, 2000, :2] = 1.0  # W r overflows for this sample only
    with pytest.raises(DivergenceError) as err:
        net.step(np.ones((batch, 1)))
    assert err.value.layer == 1


def test_kernel_choice_and_parallel_kernel_agree(monkeypatch):
    """Threads only from PARALLEL_MIN_SIZE elements on; both compilations compute the same step.

    The choice is checked with stand-ins for the two kernels: with the JIT disabled (the mutation
    run) both names are the same Python function, so an identity check of the real ones tells nothing.
    """
    n = dynamics.PARALLEL_MIN_SIZE
    monkeypatch.setattr(dynamics, "_errors_and_membranes_par", "par")
    monkeypatch.setattr(dynamics, "_errors_and_membranes_seq", "seq")
    assert [dynamics.errors_and_membranes_kernel(k) for k in (n - 1, n, n + 1)] == ["seq", "par", "par"]
    monkeypatch.undo()
    spec = NetworkSpec.feedforward([3, 64, 64, 2], tau_m=[0.5, 0.3, 0.2], tau_r=0.1, gamma=0.5)
    net = GLENetwork(spec, 0.05, seed=1)
    B = n // (3 * 64) + 1  # large enough for the parallel kernel
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, B, 3)), rng.standard_normal((5, B, 2))
    big = net.run(x, y, record=("u", "e"))
    small = net.run(x[:, :2], y[:, :2], record=("u", "e"))
    for k in ("u", "e"):
        np.testing.assert_allclose(big[k][:, :, :2], small[k], rtol=1e-13, atol=1e-15)


def test_gle_step_without_target_sends_no_error():
    spec = NetworkSpec.feedforward([1, 2, 1], tau_m=1.0, tau_r=0.5)
    net = GLENetwork(spec, 0.1, seed=0)
    net.reset(1)
    net.step([[1.0]], target=[[5.0]])
    net.step([[1.0]], target=[[5.0]])
    assert np.any(net.state.top[-1] != 0)
    net.step([[1.0]])
    assert np.all(net.state.top[-1] == 0)


def test_bptt_rejects_bad_window_and_input():
    net = GLENetwork(NetworkSpec.feedforward([2, 2], tau_m=1.0, tau_r=0.5), 0.1, seed=0)
    x, y = np.zeros((4, 1, 2)), np.zeros((4, 1, 2))
    for w in (0, -1, 1.5):
        with pytest.raises(ValueError, match=f"^window must be a positive number of steps or None, got {w!r}$"):
            bptt_gradient(net, x, y, window=w)
    with pytest.raises(ValueError, match=r"^x must have shape \(steps, batch, 2\), got \(4, 2\)$"):
        forward_record(net, x[:, 0])
    assert bptt_gradient(net, x, y, window=1)["loss"] == bptt_gradient(net, x, y)["loss"]


def test_bptt_padded_layout_and_state():
    """``padded`` returns the same gradient in the stacked layout, the final state and the outputs after each step."""
    spec = NetworkSpec.feedforward([2, 3, 2], tau_m=[[0.3, 0.5, 1.0], 0.4], tau_r=0.1)
    net = GLENetwork(spec, 0.05, seed=2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 2, 2)), rng.standard_normal((10, 2, 2))
    g = bptt_gradient(net, x, y, window=3, padded=True)
    L, N = net.n_layers, net.width
    W = g["flat"][: L * N * N].reshape(L, N, N)
    b = g["flat"][L * N * N:].reshape(L, N)
    tau = g["tau_flat"].reshape(L, N)
    for l, (n_out, n_in) in enumerate(zip(spec.sizes[1:], spec.sizes[:-1])):
        np.testing.assert_array_equal(W[l, :n_out, :n_in], g["W"][l])
        np.testing.assert_array_equal(b[l, :n_out], g["b"][l])
        np.testing.assert_array_equal(tau[l, :n_out], g["tau_m"][l])
    run = net.run(x, record=("r_out", "u"))
    np.testing.assert_allclose(g["r_after"], run["r_out"], rtol=1e-14)
    np.testing.assert_allclose(g["state"].u, run["u"][-1], rtol=1e-14)
    assert g["losses"].shape == (10,) and g["loss"] == pytest.approx(g["losses"].sum())
    np.testing.assert_array_equal(flatten(g), np.concatenate([np.ravel(a) for a in g["W"] + g["b"]]))
    assert "flat" not in bptt_gradient(net, x, y)  # the stacked layout only on request


def test_forward_record_from_a_state_clears_errors_only():
    """A recorded run from a mid-sequence state continues the network's trajectory (errors dropped, potentials kept)."""
    spec = NetworkSpec.feedforward([1, 2, 1], tau_m=0.5, tau_r=0.2, gamma=0.5)
    net = GLENetwork(spec, 0.1, seed=0)
    x = np.sin(np.arange(20) * 0.3)[:, None, None]
    full = net.run(x, record=("r_out",))["r_out"]
    st = GLEState.zeros(net.n_layers, 1, net.width, net.dtype)
    for t in range(10):
        gle_step(net.params, st, x[t], net.dt, out_top=np.ones((1, 1)))
    st_e = st.e.copy()
    rec = forward_record(net, x[10:], st)
    np.testing.assert_array_equal(st.e, st_e)  # the caller's state is not touched
    ref = GLEState.zeros(net.n_layers, 1, net.width, net.dtype)
    for t in range(10):
        gle_step(net.params, ref, x[t], net.dt, out_top=np.ones((1, 1)))
    ref.v[...] = ref.top[...] = ref.e[...] = 0.0
    for t in range(10, 20):
        gle_step(net.params, ref, x[t], net.dt)
    np.testing.assert_array_equal(rec["state"].u, ref.u)
    assert not np.allclose(rec["r_out"][1:], full[10:])  # the nudged past is kept


def test_sequence_loss_starts_from_the_given_state():
    """The loss that BPTT differentiates, from a mid-sequence state, is the one the gradient reports."""
    spec = NetworkSpec.feedforward([1, 2, 1], tau_m=0.5, tau_r=0.2)
    net = GLENetwork(spec, 0.1, seed=0)
    x = np.sin(np.arange(20) * 0.3)[:, None, None]
    y = np.cos(np.arange(20) * 0.3)[:, None, None]
    st = GLEState.zeros(net.n_layers, 1, net.width, net.dtype)
    for t in range(10):
        gle_step(net.params, st, x[t], net.dt)
    from_state = sequence_loss(net, x[10:], y[10:], initial_state=st)
    assert from_state == pytest.approx(bptt_gradient(net, x[10:], y[10:], initial_state=st)["loss"], rel=1e-14)
    assert from_state != pytest.approx(sequence_loss(net, x[10:], y[10:]), rel=1e-3)


def test_gle_gradients_equal_scaled_bptt_in_the_latent_equilibrium_limit():
    r"""One tanh layer, tau_r = tau_m, gamma = 0, constant inputs: GLE's local gradients are BPTT's, scaled exactly.

    With :math:`\tau_r = \tau_m` the prospective error is the instantaneous one
    (:math:`e = v + \tau_m (e_\mathrm{inst} - v)/\tau_r = e_\mathrm{inst}`) and
    :math:`\breve u = W x + b` has no memory, so the loss term at :math:`r(t)` depends on
    :math:`W, b` only through step :math:`t-1`: BPTT's term is
    :math:`-(y - r(t))\,\varphi'(\breve u(t{-}1))\,x^T` and GLE's update at step ``t`` is
    :math:`\beta` times that (the input is constant, so pairing with ``x(t)`` or
    ``x(t-1)`` is the same).  For the time constants
    :math:`\partial\breve u/\partial\tau_m = -\dot u` and :math:`\partial\breve u/\partial\tau_r = \dot u`
    of step :math:`t-1`, while GLE multiplies by :math:`\dot u` of step ``t``, which under a
    constant input is :math:`(1 - dt/\tau_m)` times it.  Hence, summed over the sequence,
    :math:`g_\mathrm{GLE} = \beta\,g_\mathrm{BPTT}` for W, b and
    :math:`\beta (1 - dt/\tau_m)\,g_\mathrm{BPTT}` for tau_m, tau_r, per neuron, exactly in real
    arithmetic: rounding only (30 steps, ~1e-15 each), tolerance rtol 1e-10.  The batch (3) differs
    from the layer width (4) and the inputs differ per sample, so a batch mean taken over the wrong
    axis or by the wrong count fails.
    """
    tau = np.array([0.3, 0.5, 1.0, 0.2])
    beta, dt = 0.7, 0.05
    spec = NetworkSpec.feedforward([2, 4], tau_m=tau, tau_r=tau, output_phi="tanh", gamma=0.0, beta=beta)
    net = GLENetwork(spec, dt, seed=5)
    rng = np.random.default_rng(3)
    x = np.repeat(rng.standard_normal((1, 3, 2)), 30, axis=0)
    y = np.repeat(0.5 * rng.standard_normal((1, 3, 4)), 30, axis=0)
    gle, exact = net.accumulate_gradients(x, y), bptt_gradient(net, x, y)
    for k in ("W", "b"):
        np.testing.assert_allclose(gle[k][0], beta * exact[k][0], rtol=1e-10, err_msg=k)
    for k in ("tau_m", "tau_r"):
        np.testing.assert_allclose(gle[k][0], beta * (1 - dt / tau) * exact[k][0], rtol=1e-10, err_msg=k)
        assert np.all(np.abs(exact[k][0]) > 1e-3), k  # the time constants matter here
