"""MNIST-1D: data cache, confusion matrix, Ctrl-C + --resume equals an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cortical_gle.data.mnist1d import as_steps, load_mnist1d
from cortical_gle.protocol import ProtocolError, load_protocol, parse_overrides
from cortical_gle.tasks.classify import (LaggedNetwork, confusion_matrix, evaluate, network_factory, predict,
                                        readout_accuracy, readout_steps)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_generated_offline_and_cached(cache):
    d = load_mnist1d(final_seq_length=40, cache_dir=cache)
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert set(np.unique(d["y"])) == set(range(10))
    files = list(cache.glob("mnist1d_*.npz"))
    assert len(files) == 1
    again = load_mnist1d(final_seq_length=40, cache_dir=cache)
    np.testing.assert_array_equal(again["x"], d["x"])


def test_corrupt_cache_is_named(cache):
    d = load_mnist1d(final_seq_length=40, cache_dir=cache)
    path = next(cache.glob("mnist1d_*.npz"))
    good = path.read_bytes()
    try:
        path.write_bytes(good[: len(good) // 3])
        with pytest.raises(ValueError, match=f"MNIST-1D cache {path} is corrupt"):
            load_mnist1d(final_seq_length=40, cache_dir=cache)
    finally:
        path.write_bytes(good)
    assert d["x"].shape[1] == 40


def test_as_steps_holds_each_point():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    steps = as_steps(x, 3)
    assert steps.shape == (6, 2, 1)
    assert steps[:, 0, 0].tolist() == [1, 1, 1, 2, 2, 2]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_readout_skips_leading_steps():
    # class 1 dominates the first 3 steps, class 2 (weaker) the 7 after: the sums disagree
    r = np.zeros((10, 1, 3))
    r[:3, 0, 1], r[3:, 0, 2] = 5.0, 1.0
    assert predict(r).tolist() == [1]
    assert predict(r, readout_steps(0.6, 0.2, 10)).tolist() == [2]


def test_readout_start_must_leave_steps():
    with pytest.raises(ValueError, match="readout_start = 72.0 leaves no step to read out.*360 steps"):
        readout_steps(72.0, 0.2, 360)
    with pytest.raises(ProtocolError, match="readout_start"):
        load_protocol("mnist1d", parse_overrides(["training.readout_start=-1"]))


def test_readout_curve_matches_evaluate():
    # the curve (tail sums by cumsum) and evaluate (slices) are two routes to the same predictions
    x = np.random.default_rng(3).standard_normal((40, 30, 3)).astype(np.float32)
    net = network_factory(LaggedNetwork(n_hidden=1, n_le=20, n_li=0), 3, 10, 0.2, 1e-3, seed=0)()
    for w in net.weights:
        w *= 4                                   # outputs that differ between sequences and over time
    zeros = np.zeros(30, dtype=int)
    preds = {s: evaluate(net, lambda i: (x[:, i], zeros[i]), 30, 10, readout_start=s)[0] for s in (0.0, 1.0, 4.0)}
    y = preds[4.0]                               # labels = what the readout from t = 4 (step 20) says
    curve = readout_accuracy(net, lambda i: (x[:, i], y[i]), 30, 10, [0, 5, 20])
    assert curve[2] == 100.0
    assert curve[0] == pytest.approx(100 * np.mean(preds[0.0] == y)) and curve[0] < 100.0
    assert curve[1] == pytest.approx(100 * np.mean(preds[1.0] == y))


def _train_small(tmp_path, x_test, y_test, monitor="val"):
    from cortical_gle.runner import RunContext
    from cortical_gle.tasks.classify import Training, train_online

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 40, 2)).astype(np.float32), rng.integers(0, 3, 40)
    x_val, y_val = rng.standard_normal((30, 10, 2)).astype(np.float32), rng.integers(0, 3, 10)
    make_net = network_factory(LaggedNetwork(n_hidden=1, n_le=4, n_li=4, dtype="float64"), 2, 3, 0.2, 1e-2, seed=0)
    tr = Training(epochs=3, batch=10, carry_state=True, plateau_patience=1, monitor=monitor)
    ctx = RunContext(tmp_path, "numpy", 0, progress=False)
    res = train_online(make_net, (lambda i: (x[:, i], y[i]), y),
                       {"val": (lambda i: (x_val[:, i], y_val[i]), y_val),
                        "test": (lambda i: (x_test[:, i], y_test[i]), y_test)}, tr, ctx)
    return res


def test_training_is_identical_whatever_the_test_set(tmp_path):
    """Nothing of the test set reaches training: two test sets (other labels, other inputs) give bit-identical
    weights, training losses and validation curves.  Before evaluation ran without labels and restored the
    state, carried state held test-label errors (weights differed by ~1e-2 after a few steps)."""
    rng = np.random.default_rng(1)
    x_a = rng.standard_normal((30, 20, 2)).astype(np.float32)
    a = _train_small(tmp_path / "a", x_a, rng.integers(0, 3, 20))
    b = _train_small(tmp_path / "b", x_a, rng.integers(0, 3, 20))                    # other labels
    c = _train_small(tmp_path / "c", 3 * x_a[::-1], rng.integers(0, 3, 20))          # other inputs
    for other in (b, c):
        for wa, wo in zip(a["net"].weights, other["net"].weights):
            np.testing.assert_array_equal(wa, wo)
        assert a["train_loss"] == other["train_loss"] and a["val_loss"] == other["val_loss"]
        assert a["lr"] == other["lr"]
    assert a["test_acc"] != c["test_acc"] or a["test_loss"] != c["test_loss"]   # the test sets did differ


def test_monitor_test_follows_the_test_loss(tmp_path):
    """The paper's behaviour stays available: with monitor='test' the lr plateau (and so training) depends on
    the test set, which is exactly why it is not the default."""
    rng = np.random.default_rng(1)
    x_a = rng.standard_normal((30, 20, 2)).astype(np.float32)
    y1, y2 = np.zeros(20, dtype=int), np.full(20, 2)
    a = _train_small(tmp_path / "a", x_a, y1, monitor="test")
    b = _train_small(tmp_path / "b", x_a, y2, monitor="test")
    assert a["test_loss"] != b["test_loss"]


def test_evaluate_loss_from_outputs():
    """The evaluation loss is the cross-entropy of the recorded outputs against the labels (by hand)."""
    x = np.random.default_rng(3).standard_normal((12, 6, 3)).astype(np.float64)
    net = network_factory(LaggedNetwork(n_hidden=1, n_le=5, n_li=0, dtype="float64"), 3, 4, 0.2, 1e-3, seed=0)()
    y = np.array([0, 1, 2, 3, 0, 1])
    _, _, loss = evaluate(net, lambda i: (x[:, i], y[i]), 6, 6)
    r = net.run(x, record=("r_out",))["r_out"]
    logp = r - np.log(np.exp(r).sum(axis=2, keepdims=True))
    assert loss == pytest.approx(-logp[:, np.arange(6), y].mean(), rel=1e-12)


def test_validation_split_is_fixed_and_disjoint():
    from cortical_gle.tasks.mnist1d import validation_split
    val, train = validation_split(4000, 400, 42)
    assert len(val) == 400 and len(train) == 3600 and not set(val) & set(train)
    np.testing.assert_array_equal(validation_split(4000, 400, 42)[0], val)
    assert validation_split(4000, 0, 42)[1].tolist() == list(range(4000))
    with pytest.raises(ValueError, match="n_val = 4000 leaves no training"):
        validation_split(4000, 4000, 42)
    with pytest.raises(ProtocolError, match="needs a validation set"):
        load_protocol("mnist1d", parse_overrides(["data.n_val=0"]))
    load_protocol("mnist1d", parse_overrides(["data.n_val=0", "training.monitor=test"]))   # the paper's set-up


SMALL = ["--set", "data.n_train=400", "--set", "data.n_val=50", "--set", "data.n_test=200", "--set", "training.epochs=4",
         "--set", "network.n_hidden=2", "--set", "methods=[gle]", "--set", "data.final_seq_length=120",
         "--set", "training.batch=50", "--no-progress"]


def _cli(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "cortical_gle", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, cache):
    env = {**os.environ, "CORTICAL_GLE_CACHE": str(cache)}
    ref = _cli(["mnist1d", *SMALL, "--out", str(tmp_path / "ref")], env)
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    ref_metrics = json.loads((tmp_path / "ref" / "metrics.json").read_text())

    out = tmp_path / "cut"
    proc = _cli(["mnist1d", *SMALL, "--out", str(out)], env)
    ckpt = out / "checkpoint_gle.npz"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130
    partial = json.loads((out / "metrics.json").read_text())
    assert partial["status"] == "interrupted"
    assert 1 <= len(partial["partial"]["gle"]["test_acc"]) < 4

    res = _cli(["--resume", str(out), "--no-progress"], env)
    assert res.wait(timeout=600) == 0, res.stderr.read()
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["status"] == "complete"
    assert resumed["methods"]["gle"]["test_acc"] == ref_metrics["methods"]["gle"]["test_acc"]
    assert resumed["methods"]["gle"]["train_loss"] == ref_metrics["methods"]["gle"]["train_loss"]


def test_silenced_errors_leave_the_forward_pass_unchanged_at_gamma_0():
    """Evaluation silences the error units (float32 errors decaying without a teacher go subnormal and slow
    every step ~6x).  With gamma = 0 errors never reach the soma, so the outputs must be identical bit for bit;
    with gamma > 0 they differ (the check that silencing did something)."""
    x = np.random.default_rng(5).standard_normal((40, 8, 3))
    y = np.arange(8) % 4
    for gamma, same in ((0.0, True), (0.5, False)):
        net = network_factory(LaggedNetwork(n_hidden=2, n_le=5, n_li=5, dtype="float64"), 3, 4, 0.2, 1e-2, seed=0)()
        if gamma:
            import dataclasses
            net = type(net)(dataclasses.replace(net.spec, gamma=gamma), net.dt, dtype=np.float64, seed=0)
            net.configure_learning("adam", lr=1e-2)
        net.run(x, np.broadcast_to(y, (40, 8)), learn=True)                 # errors now nonzero
        snap = net.state_snapshot()
        a = net.run(x, record=("r_out",), reset=False)["r_out"]
        net.restore_state(snap)
        net.silence_errors()
        assert not net.state.v.any() and not net.state.e.any() and not net.state.top.any()
        b = net.run(x, record=("r_out",), reset=False)["r_out"]
        assert np.array_equal(a, b) == same


def test_li_tau_r_sets_only_the_li_units_look_ahead_and_is_refused_below_dt():
    """``network.li_tau_r``: LI units get it as tau_r (LE units and the output keep tau); None is the
    paper's dt; a value below dt is refused when the network is built, naming tau_r."""
    def tau_r(**kw):
        return network_factory(LaggedNetwork(n_hidden=2, n_le=3, n_li=4, tau=1.2, **kw), 1, 2, 0.2, 1e-3,
                               seed=0)().spec.layers
    for layer in tau_r()[:-1]:
        np.testing.assert_array_equal(layer.tau_r, [1.2] * 3 + [0.2] * 4)
    layers = tau_r(li_tau_r="400 us")
    for layer in layers[:-1]:
        np.testing.assert_allclose(layer.tau_r, [1.2] * 3 + [0.4] * 4, rtol=1e-12)
    np.testing.assert_array_equal(layers[-1].tau_r, 1.2)
    with pytest.raises(ValueError, match="tau_r"):
        tau_r(li_tau_r=0.1)
