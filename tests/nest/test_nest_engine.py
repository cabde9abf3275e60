"""The NEST engine against the numpy engine (the reference), on the real NEST 3.10 and a compiled module.

The module is built once into the user cache (``$CORTICAL_GLE_CACHE`` or
``~/.cache/cortical_gle``) by the session fixture; later tests and runs reuse it.

Tolerance.  Both engines run the same float64 operations of docs/model.md#discrete-time;
only the order of the sums ``W r`` and ``W^T e`` differs (BLAS vs NEST's delivery
order), an error of a few ulp per step.  The test networks are contracting
(moderate weights and learning rate), so those ulps do not grow: 1e-9 relative
to each quantity's largest magnitude is 10^6 times that rounding level.
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from cortical_gle.engines import get_engine
from cortical_gle.spec import NetworkSpec

pytestmark = pytest.mark.nest

RTOL = 1e-9


@pytest.fixture(scope="session")
def nest_module():
    from cortical_gle.engines.nest_.build import build_nest
    return build_nest(nestml=False)


def _spec(gamma, prospective=True, phi="tanh", seed=1):
    rng = np.random.default_rng(seed)
    sizes = [3, 5, 4, 2]
    tau_m = [rng.uniform(0.5, 2.0, n) for n in sizes[1:]]
    tau_r = [rng.uniform(0.1, 1.0, n) for n in sizes[1:]]
    return NetworkSpec.feedforward(sizes, tau_m, tau_r, phi=phi, output_phi="linear", gamma=gamma,
                                   prospective_errors=prospective)


def _inputs(steps, dt, batch=1, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, batch, 3))
    t = np.arange(steps) * dt
    y = np.stack([np.sin(t), np.cos(0.5 * t)], axis=-1)[:, None, :].repeat(batch, axis=1)
    return x, y


def _close(name, a, b):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.abs(a).max(), 1e-300)
    err = np.abs(a - b).max() / scale
    assert err <= RTOL, f"{name}: relative difference {err:.3g} > {RTOL:g}"


def _pair(spec, dt, lr=1e-3, lr_tau=1e-4):
    nets = [get_engine(name).build(spec, dt, seed=3) for name in ("numpy", "nest")]
    for net in nets:
        net.configure_learning("sgd", lr=lr, learn_tau=True, tau_optimizer="sgd", lr_tau=lr_tau, tau_min=0.2)
    return nets


def _compare_params(ref, net):
    for what in ("weights", "biases", "tau_m"):
        for l, (a, b) in enumerate(zip(getattr(ref, what), getattr(net, what))):
            _close(f"{what}[{l}]", a, b)


@pytest.mark.parametrize("gamma,prospective,phi", [(0.0, True, "tanh"), (0.3, True, "tanh"),
                                                    (0.3, False, "sigmoid")])
def test_learning_run_agrees_with_numpy(nest_module, gamma, prospective, phi):
    """1,000 steps, spread tau_m/tau_r, learning W, b and tau_m: every recorded variable and parameter."""
    spec, dt = _spec(gamma, prospective, phi), 0.05
    x, y = _inputs(1000, dt)
    ref, net = _pair(spec, dt)
    rec = ("r", "u", "u_pro", "e", "r_out", "loss")
    a = ref.run(x, y, learn=True, record=rec)
    b = net.run(x, y, learn=True, record=rec)
    for k in rec:
        assert a[k].shape == b[k].shape, k
        _close(k, a[k], b[k])
    _compare_params(ref, net)
    # the weights really moved: the comparison is not between two unchanged copies
    assert max(np.abs(w1 - w0).max() for w1, w0 in zip(ref.weights, get_engine("numpy").build(spec, dt, seed=3).weights)) > 1e-3


def test_continued_runs_and_reset(nest_module):
    """Two runs with reset=False equal one long run (weight changes in flight are carried over),
    and reset keeps the learned parameters but zeroes the state."""
    spec, dt = _spec(0.3), 0.05
    x, y = _inputs(600, dt)
    ref, net = _pair(spec, dt)
    a = ref.run(x, y, learn=True, record=("r", "e"))
    b1 = net.run(x[:250], y[:250], learn=True, record=("r", "e"))
    b2 = net.run(x[250:], y[250:], learn=True, record=("r", "e"), reset=False)
    for k in ("r", "e"):
        _close(k, a[k], np.concatenate([b1[k], b2[k]]))
    _compare_params(ref, net)
    a = ref.run(x[:100], y[:100], record=("u",))
    b = net.run(x[:100], y[:100], record=("u",))
    _close("u after reset", a["u"], b["u"])


def test_batch_copies_without_learning(nest_module):
    """A batch runs as independent copies of the network (inference)."""
    spec, dt = _spec(0.3), 0.05
    x, y = _inputs(200, dt, batch=3)
    x[:, 1] *= 0.5
    ref, net = _pair(spec, dt)
    a = ref.run(x, y, record=("r_out", "loss", "e"))
    b = net.run(x, y, record=("r_out", "loss", "e"))
    for k in a:
        _close(k, a[k], b[k])


def test_phase_advance_matches_numpy(nest_module):
    """Single linear neurons driven by sines: the measured phase equals the numpy engine's (0.01 deg)."""
    from cortical_gle.tasks.phase_advance import Config, measure, simulate
    cfg = Config(task="phase-advance", dt=0.01, neurons=[{"tau_m": 10.0, "tau_r": 2.0}, {"tau_m": 5.0, "tau_r": 0.01}],
                 frequencies=[50.0, 200.0], settle=2.0, cycles=2)
    phases = [measure(cfg, *simulate(cfg, engine))[0] for engine in ("numpy", "nest")]
    assert np.max(np.abs(phases[0] - phases[1])) < 0.01


@pytest.mark.parametrize("build,message", [
    (lambda s: get_engine("nest").build(s, 0.0005 * 1.5), "time grid"),
    (lambda s: get_engine("nest").build(s, 0.05, dtype=np.float32), "float64"),
    (lambda s: get_engine("nest").build(NetworkSpec.feedforward([2, 3], 1.0, 0.5, loss="cross_entropy"), 0.05),
     "cross_entropy"),
    (lambda s: get_engine("nest").build(s, 0.05).configure_learning("adam"), "adam"),
])
def test_refuses_what_it_cannot_express(build, message):
    spec = NetworkSpec.feedforward([3, 2], 1.0, 0.5)
    with pytest.raises(ValueError, match=message):
        build(spec)


def test_refuses_batch_learning_and_unknown_parameter(nest_module):
    spec, dt = _spec(0.0), 0.05
    x, y = _inputs(10, dt, batch=2)
    net = get_engine("nest").build(spec, dt)
    net.configure_learning("sgd", lr=1e-3)
    with pytest.raises(ValueError, match="batch size 1"):
        net.run(x, y, learn=True)
    bad = get_engine("nest").build(spec, dt, neuron_params={"tau_q": 1.0})
    with pytest.raises(ValueError, match="tau_q"):
        bad.run(x[:, :1], y[:, :1])


def test_second_build_reuses_the_cache(nest_module):
    """A second build_nest finds the cached module (no compiler run: the file is unchanged)."""
    from cortical_gle.engines.nest_.build import build_nest
    before = nest_module["rate"].stat().st_mtime_ns
    t0 = time.perf_counter()
    again = build_nest(nestml=False)
    assert time.perf_counter() - t0 < 1.0
    assert again["rate"] == nest_module["rate"] and again["rate"].stat().st_mtime_ns == before


def test_cache_key_follows_the_sources(tmp_path, monkeypatch):
    """Changing one model source changes the key (and so the cache folder)."""
    import shutil
    from cortical_gle.engines.nest_ import build
    key = build.build_key()
    copy = tmp_path / "nest"
    shutil.copytree(build.models_dir(), copy)
    monkeypatch.setattr(build, "models_dir", lambda: copy)
    assert build.build_key() == key
    src = copy / "gle_rate" / "gle_rate_module.cpp"
    src.write_text(src.read_text() + "\n// changed\n")
    assert build.build_key() != key


def test_build_lock_makes_a_second_process_wait(tmp_path):
    """While one process holds the build lock, another blocks until it is released."""
    from cortical_gle.engines.nest_.build import _locked
    lock = tmp_path / "k.lock"
    code = ("import sys, time; from cortical_gle.engines.nest_.build import _locked\n"
            f"with _locked(__import__('pathlib').Path({str(lock)!r})): print(time.time())")
    with _locked(lock):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        released = time.time()
    got = float(proc.communicate(timeout=60)[0])
    assert got >= released


def test_missing_tools_are_named_with_their_debian_package(tmp_path, monkeypatch):
    from cortical_gle.engines.nest_.build import NestBuildError, check_toolchain
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, cmake or make on this PATH
    with pytest.raises(NestBuildError, match=r"cmake \(Debian package cmake\).*apt-get install -y .*g\+\+"):
        check_toolchain()


def test_a_kernel_reset_elsewhere_displaces_the_network(nest_module):
    """Other NEST code (benchmarks, the ephys data generator) resets the kernel through reset_kernel():
    the network keeps what it learned (read back first) and rebuilds on its next run, equal to the numpy
    engine continuing from rest with the same parameters."""
    from cortical_gle.engines.nest_.network import reset_kernel

    spec, dt = _spec(0.3), 0.05
    x, y = _inputs(200, dt)
    ref, net = _pair(spec, dt)
    ref.run(x, y, learn=True)
    net.run(x, y, learn=True)
    nest = reset_kernel()
    nest.Create("iaf_psc_alpha", 7)                      # somebody else's network now fills the kernel
    _compare_params(ref, net)                            # learned weights were kept
    a, b = ref.run(x, record=("r",)), net.run(x, record=("r",))
    _close("r", a["r"], b["r"])
