"""Smaller items of the review: optimizer files, the spec after learning, one Adam, the user's plot backend."""
import time
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.baselines import train_mlp
from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.engines.numpy_ import optim
from cortical_gle.protocol import load_protocol
from cortical_gle.runner import RunContext


def _learning_net():
    spec = NetworkSpec.feedforward([1, 3, 1], tau_m=[[0.5, 1.0, 2.0], 1.0], tau_r=0.1)
    net = GLENetwork(spec, 0.01, seed=0)
    net.configure_learning("adam", lr=1e-2, learn_tau=True, tau_optimizer="adam", lr_tau=1e-2, tau_min=0.1,
                           betas=(0.5, 0.6), eps=1e-3)
    x = np.random.default_rng(0).standard_normal((300, 4, 1))
    return spec, net, x, np.sin(np.cumsum(x, axis=0) * 0.01)


def test_load_restores_adam_betas_and_eps_so_training_continues_exactly(tmp_path):
    """A saved and reloaded network continues training bit for bit like the original (same arithmetic)."""
    _, net, x, y = _learning_net()
    net.run(x[:150], y[:150], learn=True)
    net.save(tmp_path / "n.npz")
    back = GLENetwork.load(tmp_path / "n.npz")
    assert back.optimizer.betas == (0.5, 0.6) and back.optimizer.eps == 1e-3
    net.run(x[150:], y[150:], learn=True, reset=False)
    back.run(x[150:], y[150:], learn=True, reset=False)
    for a, b in zip(net.weights + net.tau_m, back.weights + back.tau_m):
        np.testing.assert_array_equal(a, b)


def test_spec_reports_the_learned_tau_m_and_files_keep_it(tmp_path):
    """After learning, ``net.spec`` (and a reloaded network's spec) holds the current tau_m, not the initial."""
    spec, net, x, y = _learning_net()
    assert net.spec is spec                      # nothing learned yet: the spec as given
    net.run(x, y, learn=True)
    assert not np.allclose(net.tau_m[0], spec.layers[0].tau_m)      # tau_m did move
    for layer, tau in zip(net.spec.layers, net.tau_m):
        np.testing.assert_array_equal(layer.tau_m, tau)
    np.testing.assert_array_equal(spec.layers[0].tau_m, [0.5, 1.0, 2.0])  # the given spec is left alone
    net.save(tmp_path / "n.npz")
    back = GLENetwork.load(tmp_path / "n.npz")
    for layer, tau in zip(back.spec.layers, net.tau_m):
        np.testing.assert_array_equal(layer.tau_m, tau)


def test_mlp_baseline_steps_with_the_engines_adam(monkeypatch):
    """The MLP baseline uses the package's one Adam (one step per batch), and still learns a separable task."""
    calls = []
    step = optim.Adam.step
    monkeypatch.setattr(optim.Adam, "step", lambda self, theta, grad: (calls.append(1), step(self, theta, grad)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    hist = train_mlp(x[:150], y[:150], x[150:], y[150:], hidden=(8,), epochs=20, lr=1e-2, batch=50, seed=0)
    assert len(calls) == 20 * 3
    assert hist["test_acc"][-1] >= 90.0   # a linear boundary: a 1-hidden-layer MLP separates it


@pytest.fixture
def user_backend():
    """A backend the user chose (svg: non-interactive, so it runs headless); Agg again afterwards."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def test_plot_functions_leave_the_users_backend_alone(tmp_path, user_backend):
    """Every plot function of the tasks draws and saves its PNG without switching matplotlib's backend."""
    from cortical_gle.tasks import classify, mnist1d, phase_advance, teacher_student

    ctx = RunContext(tmp_path, "numpy", 0)
    classify.plot_readout(ctx, {"start_time": [0, 1], "train_acc": [50, 60]}, 0.5, "readout")
    classify.plot_learning_curves(ctx, {"gle": {"train_acc": [1, 2], "test_acc": [2, 3]}}, ("test",),
                                  {"paper": 90}, "curves")
    classify.plot_confusion(ctx, {"gle": {"confusion_matrix": [[1, 0], [0, 1]], "final_test_acc": 50.0}}, ["a", "b"])
    mnist1d._plot_examples(ctx, SimpleNamespace(dt=0.2, data=SimpleNamespace(upsample=1)),
                           np.zeros((5, 3, 10)), {"x_test": np.zeros((3, 5)), "y_test": [0, 1, 2]})
    phase_advance._plot(ctx, np.array([10.0, 20.0]), [{"tau_m": 1.0, "tau_r": 0.1, "phase_deg": [1, 2],
                                                       "gain": [0.5, 0.4]}])
    cfg = load_protocol("lagline")[0]
    run = {"loss_t": [1.0], "loss_curve": [1.0], "final_loss": 1.0, "tau_curve": [[[1.0], [2.0]]],
           "_trace_start": [[0, 0]], "_trace_end": [[0, 0]]}
    teacher_student._plot(ctx, cfg, {"gle": run}, teacher_student.build_teacher(cfg))
    assert matplotlib.get_backend() == user_backend
    assert len(ctx.plots) == 8 and all((tmp_path / p).stat().st_size > 1000 for p in ctx.plots)


def _engine_speed():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_speed.py"
    spec = importlib.util.spec_from_file_location("engine_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_engine_speed_breakdown_never_shows_a_negative_share_and_names_its_reference():
    """Parts that add up to more than a step (timed under load) leave the remainder unresolved, not negative;
    otherwise parts and remainder add up to the step exactly.  The 450 steps/s reference names its source."""
    mod = _engine_speed()
    rows, rest = mod.breakdown(100.0, {"a": 60.0, "b": 50.0})
    assert rest is None and all(share >= 0 for _, _, share in rows)
    rows, rest = mod.breakdown(100.0, {"a": 60.0, "b": 30.0})
    assert rest == pytest.approx(10.0) and sum(s for _, _, s in rows) + rest == pytest.approx(100.0)
    ref = mod.PAPER_CODE_REFERENCE
    assert ref["steps_per_s"] == 450.0 and "docs/model.md#reference-speed" in ref["source"]
    # a disturbed repeat does not count: the minimum over repeats is kept
    delays = iter([0.0, 0.05, 0.0, 0.0])          # warm-up, then repeats of 1 call: slow, fast, fast
    assert mod.timed(lambda: time.sleep(next(delays)), 1, repeats=3) < 0.02


def test_mnist1d_length_is_stated_one_way_360_points():
    """The loader's default, the protocol's and both docstrings agree: 360 points, one step each at dt = 0.2."""
    import inspect

    from cortical_gle.data import mnist1d as data
    from cortical_gle.tasks import mnist1d as task

    default = inspect.signature(data.load_mnist1d).parameters["final_seq_length"].default
    cfg = load_protocol("mnist1d")[0]
    assert default == task.Data().final_seq_length == cfg.data.final_seq_length == 360
    assert cfg.data.upsample == 1 and 360 * cfg.dt == pytest.approx(72.0)
    for doc in (data.__doc__, task.__doc__):
        assert "360 points" in doc and "72 x 5" not in doc


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    import re
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_model_references_point_into_docs_model_md():
    """Every reference ``model.md#<heading>`` in code, protocols and docs names a heading of docs/model.md, and no
    comment points to the unshipped spec's numbered sections any more."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    model = (root / "docs" / "model.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", model, flags=re.M)}
    assert {"continuous-model", "discrete-time", "microcircuit-mapping", "reference-speed"} <= anchors
    files = [root / "README.md", *(p for d in ("cortical_gle", "protocols", "docs", "benchmarks", "tests")
                                   for p in (root / d).rglob("*") if p.suffix in (".py", ".md", ".yaml"))]
    old = re.compile("spec " + r"sections? \d")
    refs = 0
    for path in files:
        text = path.read_text()
        assert not old.search(text), f"{path} still points to a numbered spec section"
        for anchor in re.findall(r"model\.md#([a-z0-9_-]+)", text):
            assert anchor in anchors, f"{path}: model.md#{anchor} is not a heading of docs/model.md"
            refs += 1
    assert refs >= 20
