"""GLE against NEST's own online learner, e-prop, on NEST's sine-wave regression task, in one run.

The task (NEST 3.10's e-prop example ``eprop_supervised_regression_sine-waves``, after Bellec et
al. 2020, Nat. Commun. 11:3625): 100 input channels of frozen Poisson noise (spike probability
0.05 per 1 ms step) repeated every iteration; the target, one output of 1,000 ms, is a sum of four
sines with periods 1000, 500, 333 and 200 ms, random amplitudes (0.5-2) and phases, shifted to start
at 0 and scaled to a peak of 1.  One iteration is one presentation of the 1,000 ms sequence;
learning is online and never pauses (no reset between iterations) in both networks.

e-prop (NEST's models, set up as in NEST's example): 100 parrot neurons relay the input spikes to
100 recurrent ``eprop_iaf`` neurons (all-to-all, no autapses), which project to one
``eprop_readout``; ``eprop_synapse`` with gradient descent, ``eta = 1e-4 (1 - kappa)^2``, symmetric
random feedback (``eprop_learning_signal_connection``), firing-rate regularisation to 10 Hz.
NEST's example learns slowly at its learning rate (it notes 2,000 iterations in the original
TensorFlow code); e-prop therefore also runs with that rate scaled by ``--eprop-eta-factors``
(default 1 and 100: 100 was the best of 1, 10, 100, 1000 by the test NMSE after 50 iterations).

GLE (this project's NEST engine, docs/nest.md): the same frozen spike trains as rates, each
low-pass filtered with e-prop's membrane time constant (30 ms, circularly, so the repeated
sequence is seamless), into 100 hidden GLE neurons (tanh; 50 LE units with ``tau_m = tau_r = 30
ms`` and 50 LI units with ``tau_r = dt`` and ``tau_m`` spread over 30-300 ms) and one linear output
neuron (``tau_m = tau_r = 30 ms``); no recurrence; per-step SGD in the synapses (``--lr``),
``dt = 1 ms``.

Both count neurons the same way (100 input relays, 100 hidden, 1 output) but differ in kind: e-prop
neurons spike, GLE neurons are rate units; e-prop has recurrent weights, GLE a feed-forward layer
whose memory comes from its time constants.  The loss of each is the NMSE of the output over each
iteration during learning, ``mean((y - y*)^2) / var(y*)``; the wall time is cumulative over
iterations (network construction not counted, the same for both), printed next to the CPU time
(less disturbed by other load on the machine).  Online, the output error of one
iteration already moves the weights within it, so after training each network runs one more
iteration with learning off (GLE: ``learn=False``; e-prop: learning window closed) and its NMSE is
reported as the test NMSE.

Usage:  nice -n 10 .venv/bin/python benchmarks/nest_vs_eprop.py [--iterations 200] [--seed 1]
        [--lr 1e-4] [--eprop-eta-factors 1 100] [--figure docs/img/nest_vs_eprop.png] [--json out.json]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

N_IN, N_HIDDEN, N_OUT = 100, 100, 1
DT = 1.0                 # ms, both simulations
SEQUENCE_MS = 1000.0
TAU_IN = 30.0            # ms, e-prop's membrane time constant; the GLE input filter
INPUT_SPIKE_PROB = 0.05  # per step, frozen Poisson noise
PERIODS = (1000, 500, 333, 200)  # steps


def make_task(seed: int, n_steps: int = int(SEQUENCE_MS / DT)):
    """Frozen input spikes (steps, N_IN) as booleans and the target (steps,): a sum of four sines.

    .. math:: y^*(t) = \\frac{s(t) - s(0)}{\\max_t |s(t) - s(0)|},\\quad
              s(t) = \\sum_k A_k \\sin(\\varphi_k + 2\\pi\\, t\\, \\lfloor T / P_k \\rfloor / T)
    """
    rng = np.random.default_rng(seed)
    spikes = rng.random((n_steps, N_IN)) < INPUT_SPIKE_PROB
    amp = rng.uniform(0.5, 2.0, len(PERIODS))
    phase = rng.uniform(0.0, 2 * np.pi, len(PERIODS))
    s = sum(a * np.sin(np.linspace(p, p + 2 * np.pi * (n_steps // per), n_steps))
            for a, p, per in zip(amp, phase, PERIODS))
    s = s - s[0]
    return spikes, s / max(np.abs(s).max(), 1e-12)


def input_rates(spikes: np.ndarray, tau: float = TAU_IN, dt: float = DT) -> np.ndarray:
    """Spike trains low-pass filtered, ``x(t) = sum_s exp(-(t - t_s) / tau)``, periodic in the sequence.

    The filter runs over two copies of the sequence and keeps the second, so that the first step
    carries the tail of the last (the sequence repeats without a seam).
    """
    a = np.exp(-dt / tau)
    x = np.zeros(spikes.shape[1])
    out = np.zeros((2 * len(spikes), spikes.shape[1]))
    for t, s in enumerate(np.concatenate([spikes, spikes])):
        x = a * x + s
        out[t] = x
    return out[len(spikes):]


def nmse(y, target) -> float:
    """Normalised mean squared error ``mean((y - y*)^2) / var(y*)`` (0: perfect, 1: the mean of y*)."""
    y, target = np.asarray(y, dtype=float), np.asarray(target, dtype=float)
    return float(np.mean((y - target) ** 2) / np.var(target))


def gle_spec(seed: int):
    from cortical_gle.spec import LayerSpec, NetworkSpec
    rng = np.random.default_rng(seed + 100)
    half = N_HIDDEN // 2
    tau_m = np.concatenate([np.full(half, TAU_IN), rng.uniform(TAU_IN, 10 * TAU_IN, N_HIDDEN - half)])
    tau_r = np.concatenate([np.full(half, TAU_IN), np.full(N_HIDDEN - half, DT)])
    return NetworkSpec(N_IN, (LayerSpec(N_HIDDEN, tau_m, tau_r, "tanh"), LayerSpec(N_OUT, TAU_IN, TAU_IN, "linear")))


def run_gle(iterations: int, seed: int, lr: float, engine: str = "nest", n_steps: int = int(SEQUENCE_MS / DT)):
    """Train the GLE network online; NMSE and cumulative wall time per iteration, last output."""
    from cortical_gle.engines import get_engine
    spikes, target = make_task(seed, n_steps)
    x = input_rates(spikes)[:, None, :]
    y = target[:, None, None]
    net = get_engine(engine).build(gle_spec(seed), DT, seed=seed)
    net.configure_learning("sgd", lr=lr)
    net.reset(1)
    before = net.run(x, y, learn=False, record=("r_out",), reset=False)["r_out"][:, 0, 0]  # untrained, not timed
    losses, walls, cpus, out = [], [], [], None
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        out = net.run(x, y, learn=True, record=("r_out",), reset=False)["r_out"][:, 0, 0]
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        losses.append(nmse(out, target))
    test = net.run(x, y, learn=False, record=("r_out",), reset=False)["r_out"][:, 0, 0]
    return {"nmse": np.array(losses), "wall_s": np.array(walls), "cpu_s": np.array(cpus), "last_output": out,
            "target": target,
            "test_nmse": nmse(test, target), "test_output": test, "untrained_nmse": nmse(before, target)}


def run_eprop(iterations: int, seed: int, n_steps: int = int(SEQUENCE_MS / DT), eta_factor: float = 1.0):
    """NEST's e-prop network on the same task; NMSE and cumulative wall time per iteration, last output.

    ``eta_factor`` multiplies the learning rate of NEST's example, ``eta = 1e-4 (1 - kappa)^2``.
    """
    from cortical_gle.engines.nest_.network import reset_kernel

    spikes, target = make_task(seed, n_steps)
    rng = np.random.default_rng(seed + 200)
    seq = n_steps * DT
    offset_gen, delay = DT, DT  # generators start at step 1; one step of delay into the network
    start = offset_gen + delay   # the readout sees iteration 0 from here
    task_ms = (iterations + 1) * seq  # the training iterations and one test iteration
    nest = reset_kernel()   # a GLE network that held the kernel rebuilds on its next call
    nest.set(resolution=DT, total_num_virtual_procs=1, rng_seed=seed + 1)

    kappa = 0.97                 # low-pass filter of the eligibility trace
    scale = 1.0 - kappa          # rescaling of weights and learning rate (NEST's example)
    rec_params = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "V_m": 0.0, "V_th": 0.03, "t_ref": 0.0, "tau_m": TAU_IN,
                  "c_reg": 300.0 / seq, "f_target": 10.0, "kappa": kappa, "kappa_reg": kappa,
                  "eprop_isi_trace_cutoff": 100, "flush_event_send_interval": seq,
                  "surrogate_gradient_function": "piecewise_linear", "surrogate_gradient_height": 10.0,
                  "surrogate_gradient_width": 1.0 / 33.3}
    out_params = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "V_m": 0.0, "tau_m": TAU_IN, "eprop_isi_trace_cutoff": 100}
    gen_in = nest.Create("spike_generator", N_IN)
    relay = nest.Create("parrot_neuron", N_IN)  # devices cannot have plastic synapses
    rec = nest.Create("eprop_iaf", N_HIDDEN, rec_params)
    out = nest.Create("eprop_readout", N_OUT, out_params)
    gen_target = nest.Create("step_rate_generator", N_OUT)
    gen_window = nest.Create("step_rate_generator")
    mm = nest.Create("multimeter", {"interval": DT, "record_from": ["V_m", "readout_signal", "target_signal"],
                                    "start": start, "stop": start + task_ms})

    w_in = rng.standard_normal((N_HIDDEN, N_IN)) / np.sqrt(N_IN) * scale
    w_rec = rng.standard_normal((N_HIDDEN, N_HIDDEN)) / np.sqrt(N_HIDDEN) * scale
    np.fill_diagonal(w_rec, 0.0)
    w_out = rng.standard_normal((N_OUT, N_HIDDEN)) / np.sqrt(N_HIDDEN) * scale
    w_fb = rng.standard_normal((N_HIDDEN, N_OUT)) / np.sqrt(N_HIDDEN) * scale
    nest.SetDefaults("eprop_synapse", {"optimizer": {"type": "gradient_descent", "batch_size": 1,
                                                     "eta": 1e-4 * scale ** 2 * eta_factor, "optimize_each_step": False,
                                                     "Wmin": -100.0, "Wmax": 100.0}})
    a2a = {"rule": "all_to_all", "allow_autapses": False}
    plastic = {"synapse_model": "eprop_synapse", "delay": DT}
    nest.Connect(gen_in, relay, "one_to_one", {"synapse_model": "static_synapse", "delay": DT})
    nest.Connect(relay, rec, a2a, {**plastic, "weight": w_in})
    nest.Connect(rec, rec, a2a, {**plastic, "weight": w_rec})
    nest.Connect(rec, out, a2a, {**plastic, "weight": w_out})
    nest.Connect(out, rec, a2a, {"synapse_model": "eprop_learning_signal_connection", "delay": DT, "weight": w_fb})
    rate = {"synapse_model": "rate_connection_delayed", "delay": DT}
    nest.Connect(gen_target, out, "one_to_one", {**rate, "receptor_type": 2})   # target signal
    nest.Connect(gen_window, out, "all_to_all", {**rate, "receptor_type": 1})   # learning window: always open
    nest.Connect(mm, out, "all_to_all", {"synapse_model": "static_synapse", "delay": DT})

    t_seq = np.arange(n_steps) * DT
    starts = np.arange(iterations + 1) * seq + offset_gen
    gen_in.set([{"spike_times": np.concatenate([t_seq[spikes[:, j]] + s for s in starts])} for j in range(N_IN)])
    gen_target.set({"amplitude_times": np.arange((iterations + 1) * n_steps) * DT + start,
                    "amplitude_values": np.tile(target, iterations + 1)})
    # the learning window is open during training and closed for the test iteration: the output error
    # is then zero (e-prop's firing-rate regularisation still acts on the recurrent weights)
    gen_window.set({"amplitude_times": [start, start + iterations * seq], "amplitude_values": [1.0, 0.0]})

    walls, cpus = [], []
    with nest.RunManager():
        t0, c0 = time.perf_counter(), time.process_time()
        nest.Run(start)
        for _ in range(iterations):
            nest.Run(seq)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        nest.Run(seq + 2 * DT)  # the test iteration, and the end of the (right-open) recording interval
    ev = mm.get("events")
    order = np.argsort(ev["times"], kind="stable")
    # the readout's output is its membrane V_m; "readout_signal" and "target_signal" are recorded
    # multiplied by the learning window (zero in the test iteration), so they serve as a check
    y = np.asarray(ev["V_m"])[order].reshape(iterations + 1, n_steps)
    recorded = {k: np.asarray(ev[k])[order].reshape(iterations + 1, n_steps)[:-1] for k in ("readout_signal",
                                                                                          "target_signal")}
    losses = np.array([nmse(a, target) for a in y])
    return {"nmse": losses[:-1], "wall_s": np.array(walls), "cpu_s": np.array(cpus), "last_output": y[-2], "target": target,
            "test_nmse": float(losses[-1]), "test_output": y[-1],
            "misalignment": max(float(np.abs(recorded["readout_signal"] - y[:-1]).max()),
                                float(np.abs(recorded["target_signal"] - target).max()))}


def at_time(res: dict, clock: str, t: float) -> float:
    """NMSE of the last iteration finished by time ``t`` on ``clock`` ('wall_s' or 'cpu_s'; NaN before the first)."""
    done = np.nonzero(res[clock] <= t)[0]
    return float(res["nmse"][done[-1]]) if len(done) else float("nan")


def figure(results: dict, title: str):
    """NMSE against iterations, wall time and CPU time, and the outputs of the last iteration."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(15, 3.6), layout="constrained")
    ax = fig.subplots(1, 4)
    for (name, res), c in zip(results.items(), ("C0", "C3", "C1", "C2")):
        it = np.arange(1, len(res["nmse"]) + 1)
        ax[0].semilogy(it, res["nmse"], c, label=name)
        ax[1].semilogy(res["wall_s"], res["nmse"], c, label=name)
        ax[2].semilogy(res["cpu_s"], res["nmse"], c, label=name)
        ax[3].plot(np.arange(len(res["last_output"])) * DT, res["last_output"], c, lw=1, label=name)
    target = next(iter(results.values()))["target"]
    ax[3].plot(np.arange(len(target)) * DT, target, "k--", lw=1, label="target")
    ax[0].set(xlabel="iteration (1,000 ms each)", ylabel="NMSE (online, learning on)")
    ax[1].set(xlabel="wall time (s)", ylabel="NMSE")
    ax[2].set(xlabel="CPU time (s)", ylabel="NMSE")
    ax[3].set(xlabel="time in the last iteration (ms)", ylabel="output")
    ax[0].legend(fontsize=7)
    ax[3].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=200, help="presentations of the 1,000 ms sequence")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4, help="GLE's per-step SGD learning rate")
    ap.add_argument("--eprop-eta-factors", type=float, nargs="+", default=[1.0, 100.0],
                    help="e-prop runs, each with NEST's example learning rate times this factor")
    ap.add_argument("--figure", default="docs/img/nest_vs_eprop.png", help="'' for none")
    ap.add_argument("--json", help="also write the curves to this file")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        raise SystemExit(f"--iterations must be >= 1, got {args.iterations}")
    for name, v in [("--lr", args.lr)] + [("--eprop-eta-factors", f) for f in args.eprop_eta_factors]:
        if not (v > 0 and np.isfinite(v)):
            raise SystemExit(f"{name} must be positive, got {v}")
    load0 = os.getloadavg()[0]
    results = {f"GLE, lr {args.lr:g} (NEST engine, rate)": run_gle(args.iterations, args.seed, args.lr)}
    for f in args.eprop_eta_factors:
        label = "NEST's example" if f == 1 else f"{f:g} x NEST's example"
        results[f"e-prop, eta {label} (NEST, spiking)"] = run_eprop(args.iterations, args.seed, eta_factor=f)
    load1 = os.getloadavg()[0]
    t_eq = min(r["wall_s"][-1] for r in results.values())
    c_eq = min(r["cpu_s"][-1] for r in results.values())
    print(f"{args.iterations} iterations of 1,000 ms, seed {args.seed}; load {load0:.2f} before, {load1:.2f} after")
    print("| method | NMSE it. 1 | NMSE it. 10 | NMSE it. 50 | NMSE last | test NMSE (learning off) | wall s | CPU s "
          f"| NMSE at {t_eq:.1f} s wall | NMSE at {c_eq:.1f} s CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        n = r["nmse"]
        print(f"| {name} | {n[0]:.3f} | {n[min(9, len(n) - 1)]:.3f} | {n[min(49, len(n) - 1)]:.3f} | {n[-1]:.3f} | "
              f"{r['test_nmse']:.3f} | {r['wall_s'][-1]:.1f} | {r['cpu_s'][-1]:.1f} | {at_time(r, 'wall_s', t_eq):.3f} | "
              f"{at_time(r, 'cpu_s', c_eq):.3f} |")
    gle = next(iter(results.values()))
    print(f"GLE untrained (learning off, before training): NMSE {gle['untrained_nmse']:.3f}")
    if args.figure:
        from cortical_gle.io import save_figure
        save_figure(figure(results, f"sine-wave regression, 100 inputs, 100 hidden, 1 output; seed {args.seed}"),
                    args.figure)
        print(f"figure: {args.figure}")
    if args.json:
        from cortical_gle.io import write_json
        write_json(args.json, {"args": vars(args), "results": results})
    return results


if __name__ == "__main__":
    main()
