"""Input checks, divergence reports, files and reproducibility of the numpy engine."""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import DivergenceError, GLENetwork
from cortical_gle.signals import ornstein_uhlenbeck


@pytest.fixture
def spec():
    return NetworkSpec.feedforward([2, 4, 3], tau_m=[[0.5, 1.0, 1.5, 2.0], 1.0], tau_r=0.2)


def test_nan_input_is_rejected_with_step(spec):
    net = GLENetwork(spec, 0.1, seed=0)
    net.reset(2)
    net.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN or inf at step 1"):
        net.step(np.array([[0.0, np.nan], [0.0, 0.0]]))


def test_wrong_input_and_target_shapes(spec):
    net = GLENetwork(spec, 0.1, seed=0)
    net.reset(2)
    with pytest.raises(ValueError, match=r"input must have shape \(batch, n_in\) = \(2, 2\)"):
        net.step(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target must have shape"):
        net.step(np.zeros((2, 2)), target=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(3, 4\)"):
        net.set_weights([np.zeros((4, 2)), np.zeros((4, 3))])


def test_cross_entropy_labels_checked():
    spec = NetworkSpec.feedforward([2, 3], 1.0, 1.0, loss="cross_entropy")
    net = GLENetwork(spec, 0.1, seed=0)
    net.reset(2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        net.step(np.zeros((2, 2)), target=np.array([0, 3]))


def test_divergence_stops_with_step_and_layer(spec):
    net = GLENetwork(spec, 0.1, seed=0)
    net.set_weights([np.full((4, 2), 10.0), np.full((3, 4), 1e308)])  # r_0 ~ 1: 4e308 overflows
    net.reset(1)
    net.step(np.ones((1, 2)))  # layer 1 still sees r_0 = 0 in the first step
    with pytest.raises(DivergenceError, match=r"diverged at step 1: layer 1"):
        net.step(np.ones((1, 2)))


def test_learning_rate_too_high_is_reported_not_silent(spec):
    rng = np.random.default_rng(0)
    x = ornstein_uhlenbeck(3000, 4, 2, 0.1, rng=rng)
    y = np.tanh(x[:, :, :1].repeat(3, axis=2))
    net = GLENetwork(spec, 0.1, seed=0)
    net.configure_learning("sgd", lr=1e6)
    with pytest.raises(DivergenceError, match="diverged at step"):
        net.run(x, y, learn=True)


def test_seeded_initialisation_is_reproducible(spec):
    a, b, c = GLENetwork(spec, 0.1, seed=7), GLENetwork(spec, 0.1, seed=7), GLENetwork(spec, 0.1, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
    assert not np.allclose(a.weights[0], c.weights[0])


def test_save_load_continues_identically(spec, tmp_path):
    rng = np.random.default_rng(1)
    x = ornstein_uhlenbeck(200, 3, 2, 0.1, rng=rng)
    y = rng.standard_normal((200, 3, 3)) * 0.1
    ref = GLENetwork(spec, 0.1, seed=3)
    ref.configure_learning("adam", lr=1e-2, learn_tau=True, lr_tau=1e-3)
    ref.run(x[:100], y[:100], learn=True)
    ref.save(tmp_path / "net.npz")
    out_ref = ref.run(x[100:], y[100:], learn=True, reset=False)["r_out"]
    again = GLENetwork.load(tmp_path / "net.npz")
    out_again = again.run(x[100:], y[100:], learn=True, reset=False)["r_out"]
    np.testing.assert_array_equal(out_ref, out_again)
    np.testing.assert_array_equal(ref.tau_m[0], again.tau_m[0])


def test_corrupt_network_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a cortical_gle network file"):
        GLENetwork.load(bad)


def test_float32_agrees_with_float64(spec):
    x = ornstein_uhlenbeck(300, 2, 2, 0.1, rng=np.random.default_rng(2))
    r64 = GLENetwork(spec, 0.1, seed=1).run(x)["r_out"]
    r32 = GLENetwork(spec, 0.1, seed=1, dtype=np.float32).run(x)["r_out"]
    assert r32.dtype == np.float32
    np.testing.assert_allclose(r32, r64, atol=2e-5)


def test_padded_units_never_leak_with_sigmoid():
    # sigmoid(0) != 0: padded units of the narrow hidden layer must stay silent and their
    # (padded) weights must stay exactly zero while the network learns
    spec = NetworkSpec.feedforward([5, 2, 5], 1.0, 0.5, phi="sigmoid")
    net = GLENetwork(spec, 0.1, seed=0)
    net.configure_learning("adam", lr=1e-2)
    x = ornstein_uhlenbeck(50, 1, 5, 0.1, rng=np.random.default_rng(0))
    out = net.run(x, target=np.ones((50, 1, 5)) * 0.3, learn=True, record=("r",))["r"]
    assert np.all(out[:, 0, 0, 2:] == 0.0)
    assert np.all(net.params.W[1][:, 2:] == 0.0) and np.all(net.params.W[0][2:] == 0.0)
