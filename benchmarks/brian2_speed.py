"""Learning steps per second of the Brian2 engine on each target, next to the numpy engine in the same run.

A step = forward dynamics, errors, batch gradients and a per-step Adam update of W, b and tau_m
(docs/model.md#discrete-time), batch 1, a 3-layer tanh network with about ``N`` neurons
(layers ``n_in = N/10``, two hidden layers of ``0.45 N``, output ``N/10``).  Brian2's compilation
(first run of a structure: Cython code objects, or the cpp_standalone program) is timed separately
from the steps: each target runs two steps once to compile and warm up, then the timed runs.
``compile_s`` is the cpp_standalone compilation alone (0 when the program came from the cache,
``$CORTICAL_GLE_CACHE/brian2_standalone``; delete it to time a compilation).  Every time is the minimum over
``--repeats`` repeats (the least disturbed by other load on the machine).

Usage:  .venv/bin/python benchmarks/brian2_speed.py [--sizes 100 1000] [--steps 500] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.brian2_ import TARGETS, check_target


def network(n: int) -> NetworkSpec:
    n_in, hidden, n_out = max(1, n // 10), max(1, int(0.45 * n)), max(1, n // 10)
    rng = np.random.default_rng(0)
    return NetworkSpec.feedforward([n_in, hidden, hidden, n_out], tau_m=[rng.uniform(1, 10, hidden),
                                   rng.uniform(1, 10, hidden), 5.0], tau_r=1.0, gamma=0.1)


def timed_run(net, x, y, repeats: int) -> float:
    """Seconds per step: minimum over ``repeats`` learning runs of ``len(x)`` steps."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.run(x, y, learn=True, record=())
        best = min(best, (time.perf_counter() - t0) / len(x))
    return best


def measure(n: int, steps: int, repeats: int) -> dict:
    spec = network(n)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps, 1, spec.n_in))
    y = rng.standard_normal((steps, 1, spec.n_out))
    row = {"neurons": sum(spec.sizes[1:]), "synapses_per_direction": sum(a * b for a, b in
                                                                         zip(spec.sizes[:-1], spec.sizes[1:]))}
    engines = [("numpy", {})]
    for target in TARGETS:
        try:
            check_target(target)
            engines.append(("brian2", {"target": target}))
        except RuntimeError as err:
            row[f"brian2_{target}"] = f"not available: {err}"
    for name, kw in engines:
        key = name if not kw else f"brian2_{kw['target']}"
        net = get_engine(name).build(spec, 0.1, seed=0, **kw)
        net.configure_learning("adam", 1e-4, learn_tau=True, tau_optimizer="adam", lr_tau=1e-4, tau_min=1.0)
        t0 = time.perf_counter()
        net.run(x[:2], y[:2], learn=True, record=())          # code generation and compilation (cached after)
        first = time.perf_counter() - t0
        per_step = timed_run(net, x, y, repeats)
        row[key] = {"steps_per_s": 1.0 / per_step, "first_run_s": first}
        if hasattr(net, "compile_seconds"):
            row[key]["compile_s"] = net.compile_seconds
    base = row["numpy"]["steps_per_s"]
    for key, val in row.items():
        if isinstance(val, dict) and key != "numpy":
            val["vs_numpy"] = val["steps_per_s"] / base
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = [measure(n, args.steps, args.repeats) for n in args.sizes]
    for row in rows:
        print(f"{row['neurons']} neurons, {row['synapses_per_direction']} synapses per direction:")
        for key, val in row.items():
            if isinstance(val, dict):
                extra = f"  ({val['vs_numpy']:.2f}x numpy)" if "vs_numpy" in val else ""
                extra += f"  compile {val['compile_s']:6.1f} s" if "compile_s" in val else ""
                print(f"  {key:22s} {val['steps_per_s']:10.1f} steps/s  first run {val['first_run_s']:6.1f} s{extra}")
            elif isinstance(val, str):
                print(f"  {key:22s} {val}")
    if args.json:
        from cortical_gle.io import write_json
        write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
