"""Training steps per second of the numpy engine on the paper's MNIST-1D network.

One training step = forward dynamics, local errors and gradients, and a per-step Adam update
(docs/model.md#discrete-time), batch 100, 6 hidden layers of 17 LE + 36 LI units.  Printed next
to it, from the same run: the GFLOP/s those steps achieve in their matrix products, the GFLOP/s that
numpy's matmul alone reaches on the same three stacked products, and the time of each part of a step.

Every time is the minimum over ``--repeats`` repeats (the least disturbed by other load on the
machine).  The parts are timed one by one, so under load they need not add up to a step: the
remainder is then reported as not resolved instead of as a negative share.

Usage:  .venv/bin/python benchmarks/engine_speed.py [--steps 3000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.engines.numpy_.dynamics import errors_and_membranes_kernel
from cortical_gle.engines.numpy_.losses import loss_and_dloss
from cortical_gle.networks import mnist1d_network

#: a recorded figure, not measured by this script (the paper's code is not part of this project)
PAPER_CODE_REFERENCE = {
    "steps_per_s": 450.0,
    "source": "the paper's reference PyTorch code, MNIST-1D network, batch 100, on a 2-core CPU of this "
              "kind, as recorded in the project's model notes (docs/model.md#reference-speed)",
}


def timed(fn, n, repeats=5):
    """Seconds per call of ``fn``: the minimum over ``repeats`` runs of ``n`` calls (after one warm-up call)."""
    fn()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def breakdown(total: float, parts: dict) -> tuple:
    """``([(name, time, percent of the step)], rest)`` with ``rest`` the time not in any part.

    ``rest`` is ``None`` when the parts, timed one by one, add up to more than the
    step (load on the machine): a remainder that cannot be resolved is not shown
    as a negative share.
    """
    if total <= 0:
        raise ValueError(f"the step time must be positive, got {total}")
    rows = [(k, v, 100.0 * v / total) for k, v in parts.items()]
    rest = total - sum(parts.values())
    return rows, (rest if rest >= 0 else None)


def bench(dtype, steps, batch=100, repeats=5):
    spec = mnist1d_network()
    net = GLENetwork(spec, 0.2, dtype=dtype, seed=0)
    net.configure_learning("adam", lr=5e-3 * 72 / 360)
    net.reset(batch)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, 1)).astype(dtype)
    y = np.broadcast_to(rng.integers(0, 10, size=batch), (steps, batch))
    net.run(x[:50], y[:50], learn=True)  # warm-up (JIT compile, caches)
    per_step = np.inf
    for _ in range(repeats):   # the training path: validated once, recorded per step
        t0 = time.perf_counter()
        net.run(x, y, learn=True, reset=False)
        per_step = min(per_step, (time.perf_counter() - t0) / steps)

    # useful matrix-product FLOPs of one step: W r (forward), e x^T (gradient), W^T e (error down)
    sizes = spec.sizes
    macs = sum(batch * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    useful_flops = 2 * (3 * macs - batch * sizes[0] * sizes[1])  # no error is sent below layer 0
    p, st = net.params, net.state
    L = net.n_layers
    Wt = p.W.transpose(0, 2, 1)
    n = max(100, steps // (4 * repeats))
    from cortical_gle.engines.numpy_.network import blas_single_thread
    limits = blas_single_thread()
    limits.__enter__()
    parts = {
        "matmul W r": timed(lambda: np.matmul(st.R[:L], Wt, out=st.I), n, repeats),
        "matmul e x^T": timed(lambda: np.matmul(st.e.transpose(0, 2, 1), st.R[:L], out=net.grads.W), n, repeats),
        "matmul W^T e": timed(lambda: np.matmul(st.e[1:], p.W[1:], out=st.top[:L - 1]), n, repeats),
        "fused error+membrane kernel": timed(lambda: errors_and_membranes_kernel(st.u.size)(
            st.top, st.rp, st.v, st.u, st.I, p.b, p.tau_m, p.tau_r, p.gamma, net.dtype.type(0.2), True,
            st.e, st.du, st.u_pro), n, repeats),
        "phi, phi'": timed(lambda: [(ph.fn(st.u_pro[s], st.R[1:][s]), ph.prime(st.u_pro[s], st.R[1:][s], st.rp[s]))
                                   for s, ph in p.phi_groups], n, repeats),
        "Adam (numba)": timed(lambda: net.optimizer.step(net._theta, net._grad_flat), n, repeats),
        "loss (softmax CE)": timed(lambda: loss_and_dloss("cross_entropy", net.output, y[0]), n, repeats),
    }
    limits.__exit__(None, None, None)
    matmul_only = parts["matmul W r"] + parts["matmul e x^T"] + parts["matmul W^T e"]
    padded_flops = 2 * 3 * L * batch * net.width ** 2
    return {
        "steps_per_s": 1 / per_step, "per_step_us": per_step * 1e6,
        "achieved_gflops": useful_flops / per_step / 1e9,
        "numpy_matmul_gflops": padded_flops / matmul_only / 1e9,
        "parts_us": {k: v * 1e6 for k, v in parts.items()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5, help="every time is the minimum over this many repeats")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}" for i in threadpool_info())
    except ImportError:
        blas = "unknown"
    print(f"MNIST-1D network, batch 100, per-step Adam; BLAS: {blas}")
    ref = PAPER_CODE_REFERENCE
    print(f"reference: ~{ref['steps_per_s']:.0f} steps/s, {ref['source']}")
    for dtype in (np.float32, np.float64):
        r = bench(dtype, args.steps, repeats=args.repeats)
        print(f"\n{np.dtype(dtype).name}: {r['steps_per_s']:.0f} steps/s ({r['per_step_us']:.0f} us/step), "
              f"{r['steps_per_s'] / ref['steps_per_s']:.1f}x the reference")
        print(f"  matrix products: {r['achieved_gflops']:.1f} GFLOP/s achieved in training "
              f"(useful FLOPs) vs {r['numpy_matmul_gflops']:.1f} GFLOP/s numpy matmul alone on the same shapes "
              f"(padded FLOPs)")
        rows, rest = breakdown(r["per_step_us"], r["parts_us"])
        for k, v, share in rows:
            print(f"  {k:30s} {v:7.1f} us  ({share:4.1f} %)")
        if rest is None:
            print(f"  {'recording, checks, python':30s} not resolved: the parts, timed alone, add up to "
                  f"{sum(r['parts_us'].values()):.0f} us > one step (other load on the machine)")
        else:
            print(f"  {'recording, checks, python':30s} {rest:7.1f} us  ({100 * rest / r['per_step_us']:4.1f} %)")

if __name__ == "__main__":
    main()
