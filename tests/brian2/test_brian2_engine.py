"""The Brian2 engine against the numpy engine (the reference), on real Brian2.

Agreement: both engines implement the same float64 forward-Euler update
(docs/model.md#discrete-time) and the same per-step optimizers, so the only
differences are rounding: Brian2 sums the basal input and the top-down error
synapse by synapse instead of with BLAS, rewrites ``/tau`` as ``*(1/tau)``, converts
time constants to seconds, and numpy's ``tanh`` may differ from libm's by an ulp.
Each step adds ~1e-16 relative; the network's sensitivity to its own state (a
contracting system for these sizes and rates) keeps the sum far below the
tolerance of 1e-9 relative to each variable's scale over 1,000 steps (measured:
docs/brian2.md#agreement).  Targets: 'numpy' always, 'cython' where a compiler is
present (the first run compiles, later ones reuse Brian2's cache).
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.brian2_ import TARGETS, check_target
from cortical_gle.spec import LayerSpec

pytestmark = pytest.mark.brian2

RTOL = 1e-9
VARIABLES = ("u", "u_pro", "r", "v", "e", "r_out")


def _targets():
    """Every target; 'cpp_standalone' only with --run-long here (a C++ compilation of about a minute for
    each structure, batch and learning mode; tests/brian2/test_brian2_standalone.py covers it by default)."""
    out = []
    for t in TARGETS:
        try:
            check_target(t)
            out.append(pytest.param(t, marks=pytest.mark.long) if t == "cpp_standalone" else t)
        except RuntimeError as err:    # no compiler: the reason is the skip message
            out.append(pytest.param(t, marks=pytest.mark.skip(reason=str(err))))
    return out


def spec_3layer(gamma=0.3, prospective=True):
    """3 layers (tanh, tanh, linear); tau_m 0.2..5 and tau_r 0.05..2 (dt = 0.05): spread over > 1 decade."""
    return NetworkSpec(3, (LayerSpec(5, tau_m=[0.2, 0.5, 1.0, 2.5, 5.0], tau_r=[0.05, 0.3, 1.0, 0.1, 2.0]),
                           LayerSpec(4, tau_m=[0.3, 1.2, 4.0, 0.8], tau_r=[2.0, 0.05, 0.5, 0.2]),
                           LayerSpec(2, tau_m=[1.5, 0.25], tau_r=[0.2, 0.06], phi="linear")),
                       gamma=gamma, beta=0.5, prospective_errors=prospective)


def stream(T=1000, B=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T) * 0.05
    x = np.sin(t[:, None, None] * np.array([1.0, 0.37, 2.3]) + rng.uniform(0, 6, (1, B, 3)))
    x = x + 0.2 * rng.standard_normal((T, B, 3))
    y = np.stack([np.cos(0.8 * t), np.sin(0.5 * t)], -1)[:, None, :] * rng.uniform(0.5, 1.0, (1, B, 1))
    return x, y


def run_pair(target, spec, optimizer="adam", lr=3e-3, T=1000, B=3):
    """The same learning run on the numpy engine and on Brian2; returns both records and both networks."""
    x, y = stream(T, B)
    nets = [get_engine("numpy").build(spec, 0.05, seed=1), get_engine("brian2").build(spec, 0.05, seed=1,
                                                                                         target=target)]
    outs = []
    for net in nets:
        net.configure_learning(optimizer, lr=lr, learn_tau=True, tau_optimizer=optimizer, lr_tau=lr, tau_min=0.1)
        outs.append(net.run(x, y, learn=True, record=VARIABLES + ("loss",)))
    return outs, nets


def max_rel(a, b):
    """max |a - b| / max |a|: the difference relative to the variable's scale."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


def check_agreement(outs, nets):
    (ra, rb), (na, nb) = outs, nets
    report = {k: max_rel(ra[k], rb[k]) for k in VARIABLES + ("loss",)}
    for name in ("weights", "biases", "tau_m"):
        for l, (a, b) in enumerate(zip(getattr(na, name), getattr(nb, name))):
            report[f"{name}[{l}]"] = max_rel(a, b)
    assert np.all(np.isfinite(rb["r_out"]))
    assert max(report.values()) < RTOL, report
    assert nb.tau_clamp_events == na.tau_clamp_events
    return report


@pytest.mark.parametrize("target", _targets())
def test_1000_steps_agree_with_numpy(target):
    """Every recorded variable and every parameter after 1,000 Adam steps on a batch of 3, learned tau_m on.

    gamma > 0, prospective errors on; the batch learns the batch-mean gradient (one weight per connection).
    """
    outs, nets = run_pair(target, spec_3layer(0.3, True))
    check_agreement(outs, nets)
    # the run must have learned something, or agreement would be trivial
    assert max_rel(nets[0].weights[0], get_engine("numpy").build(spec_3layer(), 0.05, seed=1).weights[0]) > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("gamma,prospective,optimizer,lr", [(0.0, True, "adam", 3e-3), (0.3, False, "adam", 1e-3),
                                                             (0.0, False, "sgd", 0.05), (0.3, True, "sgd", 0.05)])
def test_1000_steps_agree_variants(target, gamma, prospective, optimizer, lr):
    """The other corners: gamma 0, prospective errors off, plain SGD (tolerance as above).

    Without prospective errors and gamma = 0.3, Adam at lr = 3e-3 turns unstable after ~550 steps
    (errors grow 30-fold) and the run becomes chaotic: the numpy engine fed an input one ulp larger
    differs from itself at O(1) by step 700 (docs/brian2.md#agreement), so no engine can agree there;
    lr = 1e-3 stays in the stable regime that learning is meant for.
    """
    outs, nets = run_pair(target, spec_3layer(gamma, prospective), optimizer=optimizer, lr=lr)
    check_agreement(outs, nets)


# -- bad input: refused by name ------------------------------------------------------------------
def _small(**kw):
    return NetworkSpec.feedforward([2, 3, 1], tau_m=1.0, tau_r=0.5, **kw)


@pytest.mark.parametrize("kw,match", [({"loss": "cross_entropy"}, "loss 'mse' only, got 'cross_entropy'"),
                                      ({"feedback": "random"}, "feedback 'random'"),
                                      ({"feedback": "kolen_pollack"}, "feedback 'kolen_pollack'")])
def test_unsupported_spec_is_refused_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        get_engine("brian2").build(_small(**kw), 0.1, target="numpy")


def test_bad_options_are_named():
    eng = get_engine("brian2")
    with pytest.raises(ValueError, match="unknown Brian2 target 'genn'; "
                                         "available targets: cython, numpy, cpp_standalone"):
        eng.build(_small(), 0.1, target="genn")
    with pytest.raises(ValueError, match="target 'cuda_standalone' is not available on the brian2 engine: Brian2CUDA"):
        eng.build(_small(), 0.1, target="cuda_standalone")
    with pytest.raises(ValueError, match="tau_r of layer 0 neuron 0 is 0.5, below dt = 0.6"):
        eng.build(_small(), 0.6, target="numpy")
    with pytest.raises(ValueError, match="float32"):
        eng.build(_small(), 0.1, target="numpy", dtype=np.float32)
    with pytest.raises(TypeError, match="threads"):
        eng.build(_small(), 0.1, target="numpy", threads=2)
    net = eng.build(_small(), 0.1, target="numpy")
    with pytest.raises(ValueError, match="learn_tau_r"):
        net.configure_learning("adam", 1e-3, learn_tau_r=True)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        net.configure_learning("rmsprop", 1e-3)


def test_schedule_reads_every_value_after_it_is_written():
    """Brian2's schedule (slot, then order) puts producers before consumers, never by object name.

    Broken by, e.g., giving the pyramidal update the summed variables' order: the basal input of
    the step would then depend on which object's name sorts first (the trap in BRIAN2_NOTES.md).
    """
    from brian2 import Network

    net = get_engine("brian2").build(spec_3layer(), 0.05, target="numpy")
    net.configure_learning("adam", 1e-3, learn_tau=True, tau_optimizer="adam", lr_tau=1e-3, tau_min=0.1)
    net._activate_learning(True)
    entries = net.circuit.network.scheduling_summary().entries
    slots = [f"{p}{s}" for s in Network().schedule for p in ("before_", "", "after_")]
    key = {e.name: (slots.index(e.when), e.order) for e in entries if e.active}

    def before(a, b):
        assert key[a] < key[b], f"{a} {key[a]} must run strictly before {b} {key[b]}"

    L = 3
    for l in range(L):
        before("gle_input_update", f"gle_forward_{l}_summed_variable_I_basal_post")
        for k in range(L):       # every error neuron uses the top-down input of the last step
            before(f"gle_error_update_{k}", f"gle_forward_{l}_summed_variable_I_basal_post")
            if k > 0:
                before(f"gle_error_update_{l}", f"gle_feedback_{k}_summed_variable_top_post")
        before(f"gle_forward_{l}_summed_variable_I_basal_post", f"gle_pyramidal_update_{l}")
        before(f"gle_pyramidal_update_{l}", f"gle_param_gradient_{l}_summed_variable_g_tau_post")
        before(f"gle_error_update_{l}", f"gle_weight_gradient_{l}_summed_variable_g_w_post")
        for opt in (f"gle_adam_weights_{l}", f"gle_adam_biases_{l}", f"gle_adam_tau_m_{l}"):
            before(f"gle_weight_gradient_{l}_summed_variable_g_w_post", opt)
            before(f"gle_param_gradient_{l}_summed_variable_g_tau_post", opt)
            before(f"gle_feedback_{max(l, 1)}_summed_variable_top_post", opt)     # B^T e with this step's W
            for k in range(L):
                before(opt, f"gle_pyramidal_commit_{k}")                          # gradients use r_{l-1}(t)
        before(f"gle_pyramidal_update_{l}", f"gle_pyramidal_commit_{l}")


@pytest.mark.parametrize("target", _targets())
def test_training_in_chunks_of_equal_length(target):
    """Chunks of one length reuse Brian2's code objects (inputs refilled in place): each chunk must still
    see its own input and target.  Equal to the numpy engine (rounding only, tolerance as above)."""
    x, y = stream(300, 2)
    spec = spec_3layer()
    nets = [get_engine("numpy").build(spec, 0.05, seed=1), get_engine("brian2").build(spec, 0.05, seed=1,
                                                                                         target=target)]
    outs = []
    for net in nets:
        net.configure_learning("adam", lr=3e-3, learn_tau=True, tau_optimizer="adam", lr_tau=3e-3, tau_min=0.1)
        net.reset(2)
        outs.append(np.concatenate([net.run(x[k:k + 100], y[k:k + 100], learn=True, reset=False,
                                            record=("r_out",))["r_out"] for k in (0, 100, 200)]))
    assert max_rel(outs[0], outs[1]) < RTOL
    assert max_rel(nets[0].weights[1], nets[1].weights[1]) < RTOL


def _diverging_runs(engine, target, lr):
    """SGD at a learning rate far too high, in two runs (the second continues, reset=False): the
    index of the run that raised (None: neither) and the DivergenceError."""
    from cortical_gle.engines.numpy_.dynamics import DivergenceError

    x, y = stream(400, 2)
    options = {"target": target} if engine == "brian2" else {}
    if target == "cpp_standalone":
        options["chunk"] = 16           # program calls of 16 steps: the step must count across calls too
    net = get_engine(engine).build(spec_3layer(), 0.05, seed=1, **options)
    net.configure_learning("sgd", lr)
    for k, (a, b) in enumerate(((0, 150), (150, 400))):
        try:
            net.run(x[a:b], 10 * y[a:b], learn=True, record=(), reset=k == 0)
        except DivergenceError as err:
            return k, err
    return None, None


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("lr,run_index", [(10.0, 1), (1000.0, 0)])
def test_divergence_names_the_step_and_layer_of_the_numpy_engine(target, lr, run_index):
    """A run driven to divergence raises DivergenceError naming the step (counted over runs) and the layer
    at which ``u_pro`` first went non-finite, as the numpy engine does on the identical run: an exact
    comparison, since both engines agree to rounding (1e-9 relative, above) until the state overflows.

    lr = 10 diverges in the second run (so the step counts across runs), lr = 1000 in the first (layer 1).
    Both grow over ~100 steps; a state that jumps to within ~1e3 of the float64 range in one step can
    overflow a step earlier on Brian2 (du/dt in 1/s, docs/brian2.md#divergence), which these runs avoid.
    """
    ref_run, ref = _diverging_runs("numpy", None, lr)
    assert ref_run == run_index, "the run must diverge where this test expects it to"
    run, err = _diverging_runs("brian2", target, lr)
    assert (run, err.step, err.layer) == (ref_run, ref.step, ref.layer)
    assert str(err) == str(ref)
