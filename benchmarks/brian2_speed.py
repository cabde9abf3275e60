"""Simulated steps per second of the Brian2 rate microcircuit with plasticity on, per code-generation target,
next to the numpy engine on the same network in the same run (issue #10 section 5).

Networks: ``n_in`` inputs, four hidden layers of ``N/4`` tanh neurons, 10 linear outputs (``N`` hidden
neurons in all, about ``3 N^2 / 16`` plastic synapses), MSE target, per-step SGD, batch 1, float64.
For every ``N`` and target the script builds the network, runs ``--steps`` learning steps once to
compile and warm up (reported as build + compile time), then times ``--steps`` further steps (the
minimum over ``--repeats`` runs).  Ratios are against the numpy engine timed the same way in the
same run.  Brian2 sums synaptic input by scatter-add over a synapse list (no BLAS), so its cost per
step grows with the number of synapses; the numpy engine uses BLAS matrix products.

Usage:  .venv/bin/python benchmarks/brian2_speed.py [--sizes 100,1000,10000] [--targets numpy,cython,cpp_standalone]
        [--steps 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cortical_gle.engines import get_engine
from cortical_gle.spec import NetworkSpec


def network(n_hidden: int, n_in: int = 10, n_out: int = 10, seed: int = 0) -> NetworkSpec:
    """Four hidden tanh layers of ``n_hidden / 4`` neurons, tau_m and tau_r spread per neuron."""
    w = max(1, n_hidden // 4)
    sizes = [n_in, w, w, w, w, n_out]
    rng = np.random.default_rng(seed)
    tau_m = [rng.uniform(0.5, 5.0, n) for n in sizes[1:]]
    tau_r = [rng.uniform(0.05, 1.0, n) for n in sizes[1:]]
    return NetworkSpec.feedforward(sizes, tau_m, tau_r, phi="tanh", output_phi="linear", gamma=0.1)


def n_synapses(spec: NetworkSpec) -> int:
    return int(sum(a * b for a, b in zip(spec.sizes[:-1], spec.sizes[1:])))


def timed_run(net, x, y, repeats: int) -> float:
    """Seconds per step: the minimum over ``repeats`` learning runs of ``len(x)`` steps."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.run(x, y, learn=True, record=("r_out",), reset=False)
        best = min(best, (time.perf_counter() - t0) / len(x))
    return best


def bench(engine: str, spec: NetworkSpec, steps: int, repeats: int, **options) -> dict:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps, 1, spec.n_in))
    y = 0.1 * rng.standard_normal((steps, 1, spec.n_out))
    t0 = time.perf_counter()
    net = get_engine(engine).build(spec, 0.05, seed=0, **options)
    net.configure_learning("sgd", lr=1e-4)
    net.run(x, y, learn=True, record=("r_out",))          # build, code generation, compilation, warm-up
    first = time.perf_counter() - t0
    per_step = timed_run(net, x, y, repeats)
    return {"first_run_s": first, "step_s": per_step, "steps_per_s": 1.0 / per_step}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000", help="hidden neurons per network, comma separated")
    ap.add_argument("--targets", default="numpy,cython,cpp_standalone")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    print(f"{'N':>6s} {'synapses':>10s} {'engine':>22s} {'steps/s':>10s} {'x numpy':>8s} {'first run s':>12s}")
    rows = []
    for n in sizes:
        spec = network(n)
        ref = bench("numpy", spec, args.steps, args.repeats)
        rows.append((n, "numpy engine", ref, 1.0))
        print(f"{n:6d} {n_synapses(spec):10d} {'numpy engine':>22s} {ref['steps_per_s']:10.1f} {1.0:8.2f} "
              f"{ref['first_run_s']:12.2f}", flush=True)
        for target in targets:
            try:
                res = bench("brian2", spec, args.steps, args.repeats, target=target)
            except Exception as err:  # noqa: BLE001 - one target failing must not hide the others' figures
                print(f"{n:6d} {n_synapses(spec):10d} {'brian2 ' + target:>22s}   failed: {type(err).__name__}: {err}")
                continue
            ratio = ref["step_s"] / res["step_s"]
            rows.append((n, f"brian2 {target}", res, ratio))
            print(f"{n:6d} {n_synapses(spec):10d} {'brian2 ' + target:>22s} {res['steps_per_s']:10.1f} "
                  f"{ratio:8.2f} {res['first_run_s']:12.2f}", flush=True)
    print("x numpy: steps/s relative to the numpy engine on the same network in this run (> 1: faster)")
    return rows


if __name__ == "__main__":
    main()
