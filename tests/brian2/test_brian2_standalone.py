"""The Brian2 engine on ``cpp_standalone`` against the numpy engine, with a real C++ compiler.

Agreement: the program is compiled without ``-ffast-math``, ``-march=native`` or fused
multiply-adds (``-O2 -ffp-contract=off``), so every operation is the IEEE float64
operation of the numpy engine; the differences are those of the Cython target
(tests/brian2/test_brian2_engine.py): summation order (synapse by synapse, not BLAS),
``/tau`` rewritten as ``*(1/tau)``, libm's ``tanh``; ~1e-16 relative per step, 1e-15
measured after 300 steps, bounded here by 1e-12 of each variable's scale (Brian2's
default ``-ffast-math -march=native`` measured 7.5e-15 after 1,000 steps too: this bound
does not detect them, docs/brian2.md#cpp_standalone).  State
crosses program calls through files of the exact float64 bits, so a run split into
calls adds no error at all: a dropped or stale variable shows as an O(1e-3..1) difference.

Each test's first run compiles a program (~30 s of CPU for this 2-layer network, two
programs in all) into the per-user cache; later runs and later sessions reuse it.  The
3-layer, 1,000-step agreement of tests/brian2/test_brian2_engine.py runs on this target
with --run-long (five more programs).
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.brian2_ import check_target
from cortical_gle.spec import LayerSpec
from test_brian2_engine import max_rel, stream     # the same input streams and measure as the other targets

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


def _learning(net):
    net.configure_learning("adam", lr=3e-3, learn_tau=True, tau_optimizer="adam", lr_tau=3e-3, tau_min=0.1)


@pytest.mark.slow
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
def test_learning_off_without_target_then_a_new_batch():
    """Learning off without a target on batch 3 (its own program), then learning on batch 2 (the program of the
    test above): both equal to the numpy engine, the second continuing after a batch change (a new circuit)."""
    _skip_without_compiler()
    spec = spec_2layer()
    x, y = stream(120, 3)
    ref = get_engine("numpy").build(spec, 0.05, seed=2)
    net = get_engine("brian2").build(spec, 0.05, seed=2, target="cpp_standalone", chunk=50)
    for n in (ref, net):
        _learning(n)
    for kw in ({"x": x}, {"x": x[:, :2], "target": y[:, :2], "learn": True}):
        a, b = (n.run(record=VARIABLES, **kw) for n in (ref, net))
        for k in VARIABLES:
            if k == "loss" and "target" not in kw:
                assert np.all(np.isnan(a[k])) and np.all(np.isnan(b[k]))
            else:
                assert max_rel(a[k], b[k]) < RTOL, k
    for l in range(2):
        assert max_rel(ref.weights[l], net.weights[l]) < RTOL
        assert max_rel(ref.tau_m[l], net.tau_m[l]) < RTOL
