"""Pinned small-run results: any change to the numbers of the numpy engine fails here.

These are *regression* tests, not correctness tests (those are in
``tests/analytic``): they catch an unintended change of the equations, of
their order within a step, of the optimizers or of a protocol's defaults.  The
goldens were produced by this code after it passed the analytic tests.

Tolerances: float64 everywhere; the only legitimate difference between
machines is the summation order inside BLAS products, a few ulp per step that
the short runs here cannot amplify beyond ~1e-12 relative (rtol 1e-9).

To regenerate after a *deliberate* change of the numbers (say why in the
commit message)::

    PYTHONPATH=. python tests/regression/test_golden.py --regenerate

which rewrites ``tests/regression/data/golden_traces.npz`` and
``tests/regression/data/lagline_tiny.json``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.engines.numpy_.bptt import bptt_gradient
from cortical_gle.spec import LayerSpec, NetworkSpec

DATA = Path(__file__).parent / "data"
TRACES = DATA / "golden_traces.npz"
LAGLINE = DATA / "lagline_tiny.json"
LAGLINE_OVERRIDES = [("timing.t_train", 20), ("timing.t_init", 5), ("timing.batch", 4)]
RTOL, ATOL = 1e-9, 1e-12


def _input(T, B, n, seed):
    t = np.arange(T)[:, None, None] * 0.05
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(1, B, n))
    return np.sin(t * (1 + np.arange(n)) + phase)


def _mixed_net(prospective=True):
    """2-4-3-2, sigmoid / softplus / linear (every phi with a mask or a nonzero phi(0)), gamma > 0."""
    layers = (LayerSpec(4, [0.2, 0.5, 1.0, 0.3], [0.05, 0.1, 0.2, 0.3], "sigmoid", True),
              LayerSpec(3, 0.4, [0.1, 0.05, 0.2], "softplus", True),
              LayerSpec(2, [0.3, 0.6], 0.1, "linear", False))
    spec = NetworkSpec(2, layers, gamma=0.3, beta=0.7, prospective_errors=prospective)
    return GLENetwork(spec, 0.05, seed=7)


def _ce_net():
    """3-4-3 tanh / relu with a cross-entropy loss."""
    layers = (LayerSpec(4, 0.3, 0.1, "tanh", True), LayerSpec(3, 0.2, [0.05, 0.1, 0.2], "relu", True))
    return GLENetwork(NetworkSpec(3, layers, gamma=0.1, beta=1.5, loss="cross_entropy"), 0.05, seed=3)


def compute_traces() -> dict:
    """Every golden array: learning runs (Adam with tau_m, SGD with CE) and BPTT gradients."""
    out = {}
    T, B = 40, 2
    x = _input(T, B, 2, 0)
    y = 0.5 * np.cos(np.arange(T)[:, None, None] * 0.1 + np.arange(B * 2).reshape(1, B, 2))
    for name, prospective in (("mse", True), ("mse_noprosp", False)):
        net = _mixed_net(prospective)
        g = bptt_gradient(net, x, y)
        gw = bptt_gradient(net, x, y, window=5)
        for k in ("W", "b", "tau_m"):
            for l, arr in enumerate(g[k]):
                out[f"{name}_bptt_{k}{l}"] = arr
                out[f"{name}_bptt5_{k}{l}"] = gw[k][l]
        net.configure_learning("adam", lr=1e-2, learn_tau=True, lr_tau=1e-3, tau_min=0.1)
        rec = net.run(x, y, learn=True, record=("r_out", "u", "e", "u_pro", "loss"))
        for k, v in rec.items():
            out[f"{name}_{k}"] = v
        for l in range(net.n_layers):
            out[f"{name}_W{l}"], out[f"{name}_b{l}"], out[f"{name}_tau{l}"] = net.weights[l], net.biases[l], net.tau_m[l]
    net = _ce_net()
    x = _input(T, 3, 3, 1)
    labels = np.tile(np.array([0, 2, 1]), (T, 1))
    g = bptt_gradient(net, x, labels)
    for l in range(net.n_layers):
        out[f"ce_bptt_W{l}"], out[f"ce_bptt_tau_m{l}"] = g["W"][l], g["tau_m"][l]
    net.configure_learning("sgd", lr=0.05)
    rec = net.run(x, labels, learn=True, record=("r_out", "e", "loss"))
    for k, v in rec.items():
        out[f"ce_{k}"] = v
    for l in range(net.n_layers):
        out[f"ce_W{l}"] = net.weights[l]
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def compute_lagline(tmp_dir) -> dict:
    """Final losses and learned tau_m of every LagLine method on a 20-time-unit run."""
    from cortical_gle.runner import run_protocol

    m = run_protocol("lagline", quick=True, out_dir=tmp_dir, progress=False, overrides=LAGLINE_OVERRIDES)
    return {"final_loss": m["final_loss"],
            "learned_tau_m": {k: np.ravel(v["learned_tau_m"]).tolist() for k, v in m["methods"].items()}}


@pytest.mark.equations
def test_traces_of_small_fixed_networks_are_unchanged():
    """Traces (r, u, u_pro, e, loss), learned parameters and BPTT gradients match the pinned goldens."""
    golden = np.load(TRACES)
    new = compute_traces()
    assert sorted(new) == sorted(golden.files)
    for k in golden.files:
        np.testing.assert_allclose(new[k], golden[k], rtol=RTOL, atol=ATOL, err_msg=k)


def test_lagline_tiny_run_is_unchanged(tmp_path):
    """Every method of a 20-time-unit LagLine run ends with the pinned loss and tau_m."""
    golden = json.loads(LAGLINE.read_text())
    new = compute_lagline(tmp_path)
    assert sorted(new["final_loss"]) == sorted(golden["final_loss"])
    for method, loss in golden["final_loss"].items():
        assert new["final_loss"][method] == pytest.approx(loss, rel=RTOL), method
        np.testing.assert_allclose(new["learned_tau_m"][method], golden["learned_tau_m"][method], rtol=RTOL,
                                   err_msg=method)


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(__doc__)
    DATA.mkdir(exist_ok=True)
    np.savez_compressed(TRACES, **compute_traces())
    with tempfile.TemporaryDirectory() as tmp:
        LAGLINE.write_text(json.dumps(compute_lagline(tmp), indent=1) + "\n")
    print(f"wrote {TRACES} and {LAGLINE}")
