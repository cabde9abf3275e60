"""Scale of the NEST engine: layered GLE networks of 1,000 to 100,000 neurons, plasticity on.

The network.  ``N`` GLE neurons in ``N / width`` layers of ``width`` neurons (default 100), dense
between consecutive layers, so every neuron has fan-in ``width`` and the synapse count grows
linearly with ``N``: ``N width`` bottom-up synapses (``W``) plus ``(N - width) width`` top-down ones
(``B = W^T``), about ``2 N width`` in all.  Dense layers of growing width would grow as ``N^2``
(100,000 neurons in 10 layers of 10,000 are 10^9 bottom-up synapses alone); NEST's engine and
the numpy engine both hold dense layers, so the fan-in is kept fixed by the width instead.
Input ``width`` channels of sines, output layer ``width`` linear neurons learning sine targets
(MSE); hidden ``tanh``; ``tau_m = tau_r = 10 ms``; ``dt = 1 ms``; per-step SGD (``lr = 1e-3``)
on ``W`` and ``b`` (docs/model.md#discrete-time).

What is measured.  Each configuration (engine, size, threads) runs in a fresh process of its
own (``--worker``), so that its peak resident memory (``ru_maxrss``) is its own and NEST starts
from a fresh kernel.  ``sim cpu`` is the CPU time of the simulation (all threads), a measure that other load on the
machine disturbs less than the wall time.  ``build`` is network creation (NEST: Create/Connect and setting the weights) and a 2-step warm-up,
``sim`` the ``--model-time`` of simulation with learning, the real-time factor ``sim / model
time``.  ``net mem`` is the resident memory after building minus that after importing.  The
numpy engine runs the same network (the same weights from the same seed) in the same run;
``max |dr|`` is the largest difference of the final output rates from NEST's 1-thread run
(the engines agree step for step, tests/nest).  Before a size is run, its memory and time are
predicted from the smallest size (both grow linearly with ``N`` at fixed width) and the run is
skipped, with the reason printed, when the prediction exceeds ``--max-mem-gib`` or ``--max-run-s``.

Usage:  nice -n 10 .venv/bin/python benchmarks/nest_scale.py [--sizes 1000 10000 100000]
        [--threads 1 2] [--model-time 1000] [--width 100] [--no-numpy] [--quick] [--json out.json]
One configuration (what a cluster job runs, see docs/nest.md#running-on-a-cluster-with-mpi):
        .venv/bin/python benchmarks/nest_scale.py --worker nest --size 10000 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TAU_MS = 10.0
DT_MS = 1.0
LR = 1e-3
SEED = 0


def network_spec(n_neurons: int, width: int):
    """``n_neurons / width`` dense layers of ``width`` (tanh, linear output), input of ``width`` channels."""
    from cortical_gle.spec import NetworkSpec
    if n_neurons % width or n_neurons < width:
        raise ValueError(f"the neuron count {n_neurons} must be a positive multiple of the layer width {width}")
    depth = n_neurons // width
    return NetworkSpec.feedforward([width] * (depth + 1), TAU_MS, TAU_MS, phi="tanh", output_phi="linear")


def synapse_count(n_neurons: int, width: int) -> int:
    """Bottom-up ``W`` (``N width``) plus top-down ``B = W^T`` (all layers but the first: ``(N - width) width``)."""
    return n_neurons * width + (n_neurons - width) * width


def task(width: int, n_steps: int, dt: float = DT_MS):
    """Input: ``width`` sines (periods 50-500 ms, random phases); target: other sines; shapes (steps, 1, width)."""
    rng = np.random.default_rng(SEED + 1)
    t = np.arange(n_steps)[:, None] * dt
    period = rng.uniform(50.0, 500.0, size=(2, width))
    phase = rng.uniform(0.0, 2 * np.pi, size=(2, width))
    x = np.sin(2 * np.pi * t / period[0] + phase[0])
    y = 0.5 * np.sin(2 * np.pi * t / period[1] + phase[1])
    return x[:, None, :], y[:, None, :]


def _rss_mib() -> float:
    """Resident memory now (Linux ``/proc/self/status``), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this measurement needs Linux)")


def simulate(engine: str, n_neurons: int, width: int, model_time_ms: float, threads: int = 1) -> dict:
    """Build one network and run ``model_time_ms`` of it with learning on; times, memory, final output."""
    from cortical_gle.engines import get_engine
    spec = network_spec(n_neurons, width)
    n_steps = int(round(model_time_ms / DT_MS))
    x, y = task(width, n_steps)
    kwargs = {"threads": threads} if engine == "nest" else {}
    if engine == "nest":  # kernel and module loaded before the baseline: they are not the network
        import nest
        from cortical_gle.engines.nest_.build import build_nest
        if "gle_rate_neuron" not in nest.node_models:
            nest.Install(str(build_nest()["rate"]))
    eng = get_engine(engine)
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    net = eng.build(spec, DT_MS, seed=SEED, **kwargs)
    net.configure_learning("sgd", lr=LR)
    net.run(x[:2], y[:2], learn=True, record=())  # warm-up (numba compiles, NEST prepares), counted as build
    t1, c1 = time.perf_counter(), time.process_time()
    rss1 = _rss_mib()
    net.run(x, y, learn=True, record=(), reset=False)
    t2, c2 = time.perf_counter(), time.process_time()
    multi = False
    if engine == "nest":
        import nest
        multi = nest.NumProcesses() > 1
    return {"engine": engine, "neurons": n_neurons, "width": width, "layers": n_neurons // width,
            "synapses": synapse_count(n_neurons, width), "threads": threads, "model_time_ms": model_time_ms,
            "steps": n_steps, "build_s": t1 - t0, "sim_s": t2 - t1, "sim_cpu_s": c2 - c1, "rtf": (t2 - t1) / (model_time_ms / 1000.0),
            "net_mem_mib": rss1 - rss0,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # under MPI a rank holds only its own neurons: the output is read where it is local (one process)
            "output": None if multi else net.output[0].tolist()}


def _worker_cmd(args, engine, size, threads):
    return [sys.executable, os.path.abspath(__file__), "--worker", engine, "--size", str(size),
            "--threads", str(threads), "--width", str(args.width), "--model-time", str(args.model_time)]


def run_one(args, engine, size, threads) -> dict:
    """One configuration in a fresh process; its result is the last line it prints (JSON)."""
    proc = subprocess.run(_worker_cmd(args, engine, size, threads), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{engine} N={size} threads={threads} failed (exit {proc.returncode}):\n"
                           + proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def predict(done: list, engine: str, size: int, threads: int):
    """Linear-in-N prediction of (peak MiB, seconds) from the smallest finished run of the same kind."""
    same = [r for r in done if r["engine"] == engine and r["threads"] == threads]
    if not same:
        return None
    r = min(same, key=lambda r: r["neurons"])
    f = size / r["neurons"]
    base = r["peak_rss_mib"] - r["net_mem_mib"]
    return base + f * r["net_mem_mib"], f * (r["sim_s"] + r["build_s"])


def table(results: list) -> str:
    """Markdown table; ratios are sim time against NEST with 1 thread on the same network."""
    ref = {(r["neurons"], r["model_time_ms"]): r for r in results if r["engine"] == "nest" and r["threads"] == 1}
    head = ("| neurons | layers x width | synapses | model ms | engine | threads | build s | sim s | real-time factor | "
            "sim cpu s | peak RSS MiB | net mem MiB | sim wall / NEST 1 thread | sim cpu / NEST 1 thread | "
            "max abs dr vs NEST 1 thread |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(results, key=lambda r: (r["neurons"], r["model_time_ms"], r["engine"] != "nest", r["threads"])):
        base = ref.get((r["neurons"], r["model_time_ms"]))
        ratio = f"{r['sim_s'] / base['sim_s']:.2f} | {r['sim_cpu_s'] / base['sim_cpu_s']:.2f}" if base else "- | -"
        dr = "-"
        if base and r is not base and r["output"] is not None and base["output"] is not None:
            dr = f"{np.max(np.abs(np.subtract(r['output'], base['output']))):.1e}"
        lines.append(f"| {r['neurons']:,} | {r['layers']} x {r['width']} | {r['synapses']:,} | {r['model_time_ms']:g} | "
                     f"{r['engine']} | "
                     f"{r['threads'] if r['engine'] == 'nest' else 1} | {r['build_s']:.1f} | {r['sim_s']:.1f} | "
                     f"{r['rtf']:.2f} | {r['sim_cpu_s']:.1f} | {r['peak_rss_mib']:.0f} | {r['net_mem_mib']:.0f} | {ratio} | {dr} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="GLE neuron counts")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="NEST local_num_threads to compare")
    ap.add_argument("--model-time", type=float, default=1000.0, help="simulated time per run, ms")
    ap.add_argument("--width", type=int, default=100, help="neurons per layer (= fan-in)")
    ap.add_argument("--no-numpy", action="store_true", help="leave out the numpy engine")
    ap.add_argument("--max-mem-gib", type=float, default=20.0, help="skip sizes predicted to need more")
    ap.add_argument("--max-run-s", type=float, default=1800.0, help="skip runs predicted to take longer")
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 100 and 300, width 10, 50 ms")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--predict-from", help="a --json file of an earlier run of smaller sizes: predict from it too")
    ap.add_argument("--worker", choices=("nest", "numpy"), help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print the table of earlier --json files, run nothing")
    args = ap.parse_args(argv)
    if args.report:
        results = []
        for path in args.report:
            with open(path) as fh:
                results += json.load(fh)["results"]
        print(table(results))
        return results
    for name in ("model_time", "width", "max_mem_gib", "max_run_s"):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.worker:  # one configuration, result as one JSON line (rank 0 prints under MPI)
        res = simulate(args.worker, args.size, args.width, args.model_time, args.threads[0])
        rank = 0
        if args.worker == "nest":
            import nest
            rank = nest.Rank()
            res["mpi_processes"] = nest.NumProcesses()
        if rank == 0:
            print(json.dumps(res))
        return res
    if args.quick:
        args.sizes, args.width, args.model_time = [100, 300], 10, 50.0
    for n in args.sizes:
        network_spec(n, args.width)  # refuse a bad size before anything runs
    if any(t < 1 for t in args.threads):
        raise SystemExit(f"--threads must be positive integers, got {args.threads}")
    mem_avail = _mem_available_gib()
    limit_gib = min(args.max_mem_gib, mem_avail)
    print(f"layers of {args.width} (fan-in {args.width}), {args.model_time:g} ms at dt = {DT_MS:g} ms, learning on; "
          f"memory limit {limit_gib:.1f} GiB (available {mem_avail:.1f} GiB); load {os.getloadavg()[0]:.2f}")
    results, earlier = [], []
    if args.predict_from:
        with open(args.predict_from) as fh:
            earlier = json.load(fh)["results"]
    configs = [("nest", t) for t in args.threads] + ([] if args.no_numpy else [("numpy", 1)])
    for size in sorted(args.sizes):
        for engine, threads in configs:
            guess = predict(results + earlier, engine, size, threads)
            if guess and guess[0] / 1024 > limit_gib:
                print(f"skip {engine} x{threads} N={size:,}: predicted {guess[0] / 1024:.1f} GiB > {limit_gib:.1f} GiB")
                continue
            if guess and guess[1] > args.max_run_s:
                print(f"skip {engine} x{threads} N={size:,}: predicted {guess[1]:.0f} s > --max-run-s {args.max_run_s:g}")
                continue
            r = run_one(args, engine, size, threads)
            results.append(r)
            print(f"  {engine:5s} x{threads} N={size:>7,}: build {r['build_s']:7.1f} s, sim {r['sim_s']:7.1f} s "
                  f"(RTF {r['rtf']:.2f}, cpu {r['sim_cpu_s']:.1f} s), peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}\n")
    print(table(results))
    if args.json:
        from cortical_gle.io import write_json
        write_json(args.json, {"args": vars(args), "results": results})
    return results


def _mem_available_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024 ** 2
    raise RuntimeError("no MemAvailable in /proc/meminfo (this measurement needs Linux)")


if __name__ == "__main__":
    main()
