"""Learning steps per second of the Brian2 engine on each target, next to the numpy engine in the same run.

A step = forward dynamics, errors, batch gradients and a per-step Adam update of W, b and tau_m
(docs/model.md#discrete-time), batch 1, a 3-layer tanh network with about ``N`` neurons
(layers ``n_in = N/10``, two hidden layers of ``0.45 N``, output ``N/10``; ~0.29 N^2 synapses per
direction).  For every engine and size: ``build_s`` (creating the network), ``first_run_s`` (a 2-step
run: Brian2's code generation and, on Cython, compilation unless cached; ``compile_s`` is that minus
two timed steps; on cpp_standalone the program's compilation alone, 0 when it came from the cache
``$CORTICAL_GLE_CACHE/brian2_standalone``: delete that to time a compilation), then ``steps_per_s``
over ``--steps`` learning steps (minimum wall time over
``--repeats`` runs: the run least disturbed by other load), the same from CPU time (steadier on a
shared machine; every engine computes on one thread; CPU time includes the cpp_standalone program,
a child process) and the CPU time per synapse and step.  ``--profile`` and ``--flag-overhead`` skip
cpp_standalone (Brian2's profiler and the flag variant are runtime-mode measurements).

``--profile`` adds one run (``steps // 10``, at least 2) per Brian2 target and size under Brian2's
profiler: the wall time per step of each kind of code object (the three synapse sums, each per
synapse visited, the weight optimizer, the neuron updates); what the timed run took beyond them is
Python's per-object dispatch and the per-run setup.  For the numpy engine it reports (cProfile, CPU)
the dynamics with the gradients and the optimizer.
``--flag-overhead`` times the network once more without the divergence flag of the pyramidal
update (``diverged_at`` in models/brian2/gle_rate.py), runs interleaved with the flagged ones.

Usage (docs/brian2.md#speed):
  nice -n 10 .venv/bin/python benchmarks/brian2_speed.py --sizes 100 300 1000 3000 10000 \\
      --steps 200 200 100 20 4 --repeats 3 3 3 2 1 --profile --json speed.json
  nice -n 10 .venv/bin/python benchmarks/brian2_speed.py --sizes 100 1000 --steps 100 50 --repeats 8 4 --flag-overhead
  nice -n 10 .venv/bin/python benchmarks/brian2_speed.py --blas-only --sizes 100 300 1000 3000 10000
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import time

import numpy as np

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.brian2_ import TARGETS, check_target
from cortical_gle.engines.brian2_.build import equations

#: code-object name prefixes -> what they do (build.py's names); the synapse sums visit every connection
KINDS = (("gle_forward_", "forward sum W r"), ("gle_feedback_", "feedback sum W^T e"),
         ("gle_weight_gradient_", "gradient sum e r"), ("gle_adam_weights_", "Adam on W"))


def network(n: int) -> NetworkSpec:
    n_in, hidden, n_out = max(1, n // 10), max(1, int(0.45 * n)), max(1, n // 10)
    rng = np.random.default_rng(0)
    return NetworkSpec.feedforward([n_in, hidden, hidden, n_out], tau_m=[rng.uniform(1, 10, hidden),
                                   rng.uniform(1, 10, hidden), 5.0], tau_r=1.0, gamma=0.1)


def synapse_counts(spec) -> dict:
    """Connections visited per step by each synapse sum (batch 1): forward and gradient every layer,
    feedback all but the first."""
    per_layer = [a * b for a, b in zip(spec.sizes[:-1], spec.sizes[1:])]
    return {"forward sum W r": sum(per_layer), "feedback sum W^T e": sum(per_layer[1:]),
            "gradient sum e r": sum(per_layer), "Adam on W": sum(per_layer)}


@contextlib.contextmanager
def without_divergence_flag():
    """Networks built inside have the pyramidal update without its ``diverged_at`` line (to time the flag)."""
    eq = equations()
    old = eq["PYRAMIDAL_UPDATE"]
    eq["PYRAMIDAL_UPDATE"] = "\n".join(s for s in old.splitlines() if not s.startswith("diverged_at"))
    try:
        yield
    finally:
        eq["PYRAMIDAL_UPDATE"] = old


def build(name, kw, spec, x, y):
    """A configured network, its build time and its first (2-step) run time."""
    t0 = time.perf_counter()
    net = get_engine(name).build(spec, 0.1, seed=0, **kw)
    built = time.perf_counter() - t0
    net.configure_learning("adam", 1e-4, learn_tau=True, tau_optimizer="adam", lr_tau=1e-4, tau_min=1.0)
    t0 = time.perf_counter()
    net.run(x[:2], y[:2], learn=True, record=())          # code generation and compilation (cached after)
    return net, built, time.perf_counter() - t0


def seconds_per_step(net, x, y) -> np.ndarray:
    """Wall and CPU seconds per step of one learning run (CPU time: steadier on a loaded machine)."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    net.run(x, y, learn=True, record=())
    return np.array([time.perf_counter() - t0, cpu_seconds() - c0]) / len(x)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the cpp_standalone program runs as one)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def profile(net, x, y, counts, wall: float) -> dict:
    """Seconds per step of each kind of Brian2 code object (Brian2's profiler), per synapse for the sums;
    the rest of ``wall`` (the timed run's seconds per step) is Python's dispatch and the per-run setup."""
    from brian2 import get_device

    opts = get_device().build_options
    opts["profile"] = True
    try:
        seconds_per_step(net, x, y)
    finally:
        opts.pop("profile")
    info = [(name, float(t)) for name, t in net.circuit.network.get_profiling_info()]
    out, rest = {}, 0.0
    for name, t in info:
        kind = next((k for prefix, k in KINDS if name.startswith(prefix)), None)
        if kind is None:
            rest += t / len(x)
        else:
            out[kind] = out.get(kind, 0.0) + t / len(x)
    prof = {k: {"s_per_step": v, "ns_per_synapse": 1e9 * v / counts[k]} for k, v in out.items()}
    prof["neurons, biases, tau_m, inputs"] = {"s_per_step": rest}
    prof["rest: Python dispatch, run setup"] = {"s_per_step": max(0.0, wall - sum(out.values()) - rest)}
    return prof


def blas_reference(n: int, repeats: int = 5) -> dict:
    """CPU ns per synapse of the bare numpy/BLAS operations a batch-1 step needs on the real layer shapes
    (no padding): ``W r`` (forward), ``W^T e`` (feedback) and the outer product ``e r^T`` (gradient)."""
    from cortical_gle.engines.numpy_.network import blas_single_thread

    spec = network(n)
    rng = np.random.default_rng(2)
    Ws = [rng.standard_normal((b, a)) for a, b in zip(spec.sizes[:-1], spec.sizes[1:])]
    out = {}
    ops = {"W r": lambda W: W @ np.ones(W.shape[1]), "W^T e": lambda W: W.T @ np.ones(W.shape[0]),
           "e r^T": lambda W: np.outer(np.ones(W.shape[0]), np.ones(W.shape[1]))}
    with blas_single_thread():
        for name, op in ops.items():
            best = np.inf
            for _ in range(repeats):
                c0 = time.process_time()
                for W in Ws:
                    op(W)
                best = min(best, time.process_time() - c0)
            out[name] = 1e9 * best / sum(W.size for W in Ws)
    return out


def pyramidal_update_seconds(nets: dict, batches: int = 30, calls: int = 100) -> dict:
    """CPU seconds of one step's pyramidal updates (the code objects holding the divergence flag) per
    network, called directly, alternating between the networks; minimum over ``batches``."""
    runners = {k: [o for o in net.circuit.network.objects if o.name.startswith("gle_pyramidal_update_")]
               for k, (net, _, _) in nets.items()}
    best = {k: np.inf for k in nets}
    for r in range(batches):
        for k in list(nets)[::(-1) ** r]:
            c0 = time.process_time()
            for _ in range(calls):
                for o in runners[k]:
                    o.run()
            best[k] = min(best[k], (time.process_time() - c0) / calls)
    return best


def profile_numpy_engine(net, x, y, n_syn: int) -> dict:
    """CPU seconds per step of the numpy engine's two parts (cProfile): the dynamics with the gradients
    (``gle_step``: the matrix products) and the optimizer steps (Adam), per synapse too."""
    import cProfile
    import pstats

    prof = cProfile.Profile(timer=time.process_time)
    prof.runcall(net.run, x, y, learn=True, record=())
    parts = {"dynamics and gradients (gle_step)": 0.0, "Adam (optimizer steps)": 0.0}
    for (path, _, func), (_, _, _, cumtime, _) in pstats.Stats(prof).stats.items():
        if func == "gle_step":
            parts["dynamics and gradients (gle_step)"] += cumtime / len(x)
        elif func == "step" and path.endswith("optim.py"):
            parts["Adam (optimizer steps)"] += cumtime / len(x)
    return {k: {"s_per_step": v, "ns_per_synapse": 1e9 * v / n_syn} for k, v in parts.items()}


def measure(n: int, steps: int, repeats: int, do_profile: bool, flag_overhead: bool) -> dict:
    spec = network(n)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps, 1, spec.n_in))
    y = rng.standard_normal((steps, 1, spec.n_out))
    counts = synapse_counts(spec)
    n_syn = counts["forward sum W r"]
    row = {"neurons": sum(spec.sizes[1:]), "synapses_per_direction": n_syn, "steps": steps, "repeats": repeats}
    engines = [("numpy", {})]
    for target in TARGETS:
        try:
            check_target(target)
            engines.append(("brian2", {"target": target}))
        except RuntimeError as err:
            row[f"brian2_{target}"] = f"not available: {err}"
    for name, kw in engines:
        key = name if not kw else f"brian2_{kw['target']}"
        nets = {"flag": build(name, kw, spec, x, y)}
        runtime = kw.get("target") != "cpp_standalone"
        if flag_overhead and kw and runtime:
            with without_divergence_flag():
                nets["no_flag"] = build(name, kw, spec, x, y)
        best = {k: np.full(2, np.inf) for k in nets}     # (wall, CPU) seconds per step, minimum over repeats
        for r in range(repeats):      # interleaved, in alternating order: both variants see the same load
            for k in list(nets)[::(-1) ** r]:
                best[k] = np.minimum(best[k], seconds_per_step(nets[k][0], x, y))
        net, built, first = nets["flag"]
        wall, cpu = best["flag"]
        row[key] = {"steps_per_s": 1.0 / wall, "cpu_steps_per_s": 1.0 / cpu, "build_s": built,
                    "first_run_s": first,
                    "compile_s": getattr(net, "compile_seconds", max(0.0, first - 2 * wall)),
                    "ns_per_synapse_step": 1e9 * cpu / n_syn}
        if "no_flag" in best:
            row[key]["flag_overhead_cpu"] = cpu / best["no_flag"][1] - 1.0
            row[key]["flag_overhead_wall"] = wall / best["no_flag"][0] - 1.0
            upd = pyramidal_update_seconds(nets)
            row[key]["flag_cost_s_per_step"] = upd["flag"] - upd["no_flag"]
            row[key]["flag_cost_of_step"] = (upd["flag"] - upd["no_flag"]) * row[key]["cpu_steps_per_s"]
        n_prof = max(2, steps // 10)  # a separate, shorter run: the profilers add a clock read per call
        if do_profile and kw and runtime:
            row[key]["profile"] = profile(net, x[:n_prof], y[:n_prof], counts, wall)
        elif do_profile:
            row[key]["profile"] = profile_numpy_engine(net, x[:n_prof], y[:n_prof], n_syn)
        del nets, net
        gc.collect()                                  # free one engine's arrays before the next is built
    for key, val in row.items():
        if isinstance(val, dict) and key != "numpy":
            val["vs_numpy"] = val["steps_per_s"] / row["numpy"]["steps_per_s"]
            val["cpu_vs_numpy"] = val["cpu_steps_per_s"] / row["numpy"]["cpu_steps_per_s"]
    return row


def per_size(values, sizes, name):
    if len(values) == 1:
        return values * len(sizes)
    if len(values) != len(sizes):
        raise SystemExit(f"--{name} takes one value or one per size ({len(sizes)}), got {len(values)}")
    return values


def print_row(row) -> None:
    print(f"{row['neurons']} neurons, {row['synapses_per_direction']} synapses per direction "
          f"({row['steps']} steps, best of {row['repeats']}):", flush=True)
    for key, val in row.items():
        if isinstance(val, str):
            print(f"  {key:22s} {val}")
        if not isinstance(val, dict):
            continue
        extra = f"  ({val['vs_numpy']:.2f}x numpy, CPU {val['cpu_vs_numpy']:.2f}x)" if "vs_numpy" in val else ""
        if "flag_overhead_cpu" in val:
            extra += (f"\n      divergence flag: whole runs {100 * val['flag_overhead_cpu']:+.1f}% CPU, "
                      f"{100 * val['flag_overhead_wall']:+.1f}% wall; pyramidal updates alone "
                      f"{1e6 * val['flag_cost_s_per_step']:+.2f} us/step = "
                      f"{100 * val['flag_cost_of_step']:+.2f}% of a step")
        print(f"  {key:22s} {val['steps_per_s']:9.2f} steps/s wall {val['cpu_steps_per_s']:9.2f} CPU  "
              f"{val['ns_per_synapse_step']:7.2f} ns/synapse/step CPU  build {val['build_s']:5.1f} s  "
              f"compile {val['compile_s']:5.1f} s{extra}")
        for kind, p in val.get("profile", {}).items():
            per = f"  {p['ns_per_synapse']:6.2f} ns/synapse" if "ns_per_synapse" in p else ""
            print(f"      {kind:34s} {1e3 * p['s_per_step']:9.3f} ms/step{per}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--steps", type=int, nargs="+", default=[500], help="one value, or one per size")
    ap.add_argument("--repeats", type=int, nargs="+", default=[3], help="one value, or one per size")
    ap.add_argument("--profile", action="store_true", help="time each kind of Brian2 code object")
    ap.add_argument("--flag-overhead", action="store_true", help="time Brian2 without the divergence flag too")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--blas-only", action="store_true",
                    help="only the bare BLAS/numpy reference per size (ns per synapse of W r, W^T e, e r^T)")
    args = ap.parse_args(argv)
    if args.blas_only:
        for n in args.sizes:
            ref = blas_reference(n)
            print(f"{n} neurons: " + ", ".join(f"{k} {v:.2f}" for k, v in ref.items()) + " ns/synapse CPU")
        return None
    steps = per_size(args.steps, args.sizes, "steps")
    repeats = per_size(args.repeats, args.sizes, "repeats")
    t0 = time.perf_counter()
    rows = []
    for n, s, r in zip(args.sizes, steps, repeats):
        rows.append(measure(n, s, r, args.profile, args.flag_overhead))
        print_row(rows[-1])
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        from cortical_gle.io import write_json
        write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
