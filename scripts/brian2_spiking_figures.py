"""Figures and numbers of docs/brian2-spiking.md: the spiking student's learning curves (3 seeds) and a raster.

Run from the repository root (Cython target; ~1-2 min on 2 cores once compiled):

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/brian2_spiking_figures.py [--out docs/img]

Same configuration as tests/brian2/test_brian2_spiking.py::test_spiking_student_loss_falls_tenfold.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import quantities as pq
from matplotlib.figure import Figure

from cortical_gle.analysis.spikes import psth
from cortical_gle.io import save_figure
from cortical_gle.tasks.spiking_teacher import lagline_config, train_spiking_student
from cortical_gle.tasks.teacher_student import Stream

OPTIONS = dict(cells_per_unit=50, r_max=200.0, target="cython", chunk_steps=20000)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    out = Path(args.out)
    cfg = lagline_config(t_train=4000.0)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {s: train_spiking_student(cfg, s, **OPTIONS) for s in seeds}
    summary = {s: {k: r[k] for k in ("initial", "final", "ratio", "weights", "teacher_weights")}
               for s, r in results.items()}
    print(json.dumps(summary, indent=1))

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    for i, (s, r) in enumerate(results.items()):
        ax.plot(r["loss_t"], r["loss_curve"], c=f"C{i}", lw=1,
                label=f"seed {s}: {r['initial']:.3f} -> {r['final']:.4f} ({r['ratio']:.0f}x)")
    ax.set(yscale="log", xlabel="learning time (ms)", ylabel="loss, mean over 100 ms",
           title="spiking GLE student (Brian2, 50 Poisson cells/unit at <= 200 Hz)\nvs rate teacher (numpy engine)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "brian2_spiking_learning.png")

    # after learning: 300 ms more of the same stream, spikes and rates recorded
    s0, net = seeds[0], results[seeds[0]]["net"]
    dt, n_done = cfg.dt, int(round((cfg.timing.t_init + cfg.timing.t_train) / cfg.dt))
    n_eval = int(round(300.0 / dt))
    x, y, _ = Stream(cfg, s0, n_done + n_eval).get(n_done, n_eval)
    t0 = net.spike_trains()[0][0].t_stop
    rec = net.run(x, y, learn=False, record=("r", "r_out"), reset=False)   # from the learned state
    trains = [[st.time_slice(t0, None) for st in layer] for layer in net.spike_trains()]
    t = np.arange(n_eval) * dt
    fig = Figure(figsize=(7, 6))
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2, 2, 2]})
    axes[0].plot(t, x[:, 0, 0], c="k", lw=1)
    axes[0].set_ylabel("input x")
    for l, ax in enumerate(axes[1:3]):
        for k, st in enumerate(trains[l]):
            ax.plot((st - t0).rescale(pq.ms).magnitude, np.full(len(st), k), "|", c=f"C{l}", ms=2)
        ax.set_ylabel(f"layer {l + 1}\ncell")
    for l in range(2):
        rate = psth(trains[l], 2 * pq.ms)     # Elephant's time histogram, spikes per cell (Hz)
        axes[3].step((rate.times - t0).rescale(pq.ms).magnitude, rate.magnitude[:, 0] / OPTIONS["r_max"],
                     where="mid", c=f"C{l}", lw=1, alpha=0.6, label=f"layer {l + 1}: spikes (PSTH / r_max)")
        axes[3].plot(t, rec["r"][:, l, 0, 0], c=f"C{l}", lw=1.5, ls="--", label=f"layer {l + 1}: phi(u_pro)")
    axes[3].plot(t, y[:, 0, 0], c="k", lw=1, label="teacher output (rate model)")
    axes[3].set(xlabel="time after learning (ms)", ylabel="rate / r_max")
    axes[3].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(fig, out / "brian2_spiking_raster.png")
    return summary


if __name__ == "__main__":
    main()
