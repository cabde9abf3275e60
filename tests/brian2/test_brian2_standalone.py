"""The Brian2 engine on ``cpp_standalone`` against the numpy engine, with a real C++ compiler.

Agreement: the program is compiled without ``-ffast-math``, ``-march=native`` or fused
multiply-adds (``-O2 -ffp-contract=off``), so every operation is the IEEE float64
operation of the numpy engine; the differences are those of the Cython target
(tests/brian2/test_brian2_engine.py): summation order (synapse by synapse, not BLAS),
``/tau`` rewritten as ``*(1/tau)``, libm's ``tanh``; ~1e-16 relative per step, 1e-15
measured after 300 steps, bounded here by 1e-12 of each variable's scale.  State
crosses program calls through files of the exact float64 bits, so a run split into
calls adds no error at all: a dropped or stale variable shows as an O(1e-3..1) difference.

The first run compiles the network's program (~30 s CPU for this 2-layer network) into
the per-user cache; later runs and later sessions reuse it.
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.brian2_ import check_target
from cortical_gle.spec import LayerSpec

pytestmark = pytest.mark.brian2

RTOL = 1e-12
VARIABLES = ("u", "u_pro", "r", "v", "e", "r_out", "loss")


def _skip_without_compiler():
    try:
        check_target("cpp_standalone")
    except RuntimeError as err:
        pytest.skip(str(err))


def spec_2layer():
    """tanh hidden layer, linear output; tau_m 0.2..5, tau_r 0.05..2 (dt = 0.05), gamma > 0, prospective errors."""
    return NetworkSpec(3, (LayerSpec(4, tau_m=[0.2, 1.2, 4.0, 0.8], tau_r=[2.0, 0.05, 0.5, 0.2]),
                           LayerSpec(2, tau_m=[1.5, 0.25], tau_r=[0.2, 0.06], phi="linear")),
                       gamma=0.3, beta=0.5, prospective_errors=True)


def stream(T, B, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T) * 0.05
    x = np.sin(t[:, None, None] * np.array([1.0, 0.37, 2.3]) + rng.uniform(0, 6, (1, B, 3)))
    x = x + 0.2 * rng.standard_normal((T, B, 3))
    y = np.stack([np.cos(0.8 * t), np.sin(0.5 * t)], -1)[:, None, :] * rng.uniform(0.5, 1.0, (1, B, 1))
    return x, y


def max_rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


def _learning(net):
    net.configure_learning("adam", lr=3e-3, learn_tau=True, tau_optimizer="adam", lr_tau=3e-3, tau_min=0.1)


def test_runs_of_any_length_continue_exactly(tmp_path):
    """300 Adam steps (learned tau_m, clamped at tau_min) on batch 2 in runs of 70, 1, 129 and 100 steps with
    reset=False, the program limited to 64 steps per call (so runs are split: 64+6, 1, 64+64+1, 64+36); then
    save, load (a new network on the same compiled program) and 50 more steps.  Every recorded variable, every
    parameter and the clamp count equal the numpy engine's (tolerance in the module docstring)."""
    _skip_without_compiler()
    spec = spec_2layer()
    x, y = stream(350, 2)
    ref = get_engine("numpy").build(spec, 0.05, seed=1)
    net = get_engine("brian2").build(spec, 0.05, seed=1, target="cpp_standalone", chunk=64)
    bounds = [(0, 70), (70, 71), (71, 200), (200, 300)]
    outs = []
    for n in (ref, net):
        _learning(n)
        n.reset(2)
        outs.append([n.run(x[a:b], y[a:b], learn=True, reset=False, record=VARIABLES) for a, b in bounds])
    for k in VARIABLES:
        a, b = (np.concatenate([r[k] for r in o]) for o in outs)
        assert a.shape == b.shape == ((300,) if k == "loss" else b.shape)
        assert max_rel(a, b) < RTOL, k
    for name in ("weights", "biases", "tau_m"):
        for l, (a, b) in enumerate(zip(getattr(ref, name), getattr(net, name))):
            assert max_rel(a, b) < RTOL, f"{name}[{l}]"
    assert net.tau_clamp_events == ref.tau_clamp_events > 0
    assert net.steps_done == 300
    # learning did something (else agreement would be trivial)
    assert max_rel(ref.weights[0], get_engine("numpy").build(spec, 0.05, seed=1).weights[0]) > 1e-2

    net.save(tmp_path / "net.npz")
    loaded = get_engine("brian2").load(tmp_path / "net.npz")
    assert loaded.target == "cpp_standalone"
    a = ref.run(x[300:], y[300:], learn=True, reset=False, record=("r_out", "e"))
    b = loaded.run(x[300:], y[300:], learn=True, reset=False, record=("r_out", "e"))
    assert loaded.compile_seconds == 0          # the program compiled above, from the cache
    for k in ("r_out", "e"):
        assert max_rel(a[k], b[k]) < RTOL, k
    assert max_rel(ref.weights[1], loaded.weights[1]) < RTOL


def test_without_compiler_the_error_names_the_fix(monkeypatch):
    """No g++ on the path: the target is refused with the package to install and the fallback target."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="cpp_standalone' is not available here: g\\+\\+ and make not found.*"
                                           "apt-get install g\\+\\+ make.*target='numpy'"):
        get_engine("brian2").build(spec_2layer(), 0.05, target="cpp_standalone")


def test_bad_chunk_is_named():
    _skip_without_compiler()
    with pytest.raises(ValueError, match="chunk must be a positive integer, got 0"):
        get_engine("brian2").build(spec_2layer(), 0.05, target="cpp_standalone", chunk=0)


@pytest.mark.slow
def test_learning_off_no_target_and_batch_change():
    """Learning off without a target (another program), then a new batch size (another program): equal to numpy."""
    _skip_without_compiler()
    spec = spec_2layer()
    x, y = stream(120, 3)
    ref = get_engine("numpy").build(spec, 0.05, seed=2)
    net = get_engine("brian2").build(spec, 0.05, seed=2, target="cpp_standalone", chunk=50)
    for n in (ref, net):
        _learning(n)
    for kw in ({"x": x[:, :2]}, {"x": x, "target": y, "learn": True}):
        a, b = (n.run(record=("r_out", "u"), **kw) for n in (ref, net))
        for k in ("r_out", "u"):
            assert max_rel(a[k], b[k]) < RTOL, (k, kw.keys())
    assert max_rel(ref.weights[0], net.weights[0]) < RTOL
