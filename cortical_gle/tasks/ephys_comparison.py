r"""GLE neurons against current-clamp recordings: transfer functions, rates, ISIs, fitted tau_m and tau_r.

1. The recording: ``data.path`` (any file Neo reads), or, by default, one made
   here with NEST's built-in ``hh_psc_alpha``, ``aeif_cond_exp`` and
   ``iaf_psc_alpha`` driven by noisy sinusoids (:mod:`cortical_gle.data.nest_ephys`),
   written to ``nest_recording.nix`` and read back through Neo.
2. Per cell: the rate response (gain, phase) at each stimulus frequency from
   every trial (:mod:`cortical_gle.analysis.ephys`), then a fit of the GLE
   transfer function :math:`g_0(1+i\omega\tau_r)/(1+i\omega\tau_m)` to the
   trial-mean phase (:func:`cortical_gle.analysis.transfer.fit_gle`) over the
   widest range from the lowest frequency up where every residual stays within
   ``fit.max_residual`` degrees, with bootstrap intervals over trials.
3. The fitted GLE neuron (numpy engine, linear phi) is driven by the same
   currents; its rate :math:`\bar r + g_0\,r_\mathrm{GLE}(t)` gives inhomogeneous
   Poisson spikes (Elephant), and the same statistics are computed for it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import neo
import numpy as np
import quantities as pq
from pydantic import BaseModel, ConfigDict, Field

from ..analysis import ephys, transfer
from ..analysis.neo_io import read_blocks, write_block
from ..engines import get_engine
from ..protocol import ProtocolBase
from ..spec import LayerSpec, NetworkSpec
from .fields import Frequency, NonNegativeTime, Time

#: published measurements shown in the figure (../shared/EPHYS_NOTES.md); each with its citation
PUBLISHED_PHASE = [  # (frequency Hz, phase lead deg, label)
    (0.125, 16.0, "Sekirnjak & du Lac 2002, strongly adapting MVN"),
    (0.25, 11.0, "Sekirnjak & du Lac 2002, strongly adapting MVN"),
    (0.125, 4.0, "Sekirnjak & du Lac 2002, weakly adapting MVN"),
    (0.25, 2.0, "Sekirnjak & du Lac 2002, weakly adapting MVN"),
]
PUBLISHED_GAIN_NOTE = ("Koendgen et al. 2008 (doi:10.1093/cercor/bhm235): L5 pyramidal gain flat up to ~200 Hz "
                       "(no phase values confirmed)")


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str = "I_inj"
    spikes: str | None = "spikes"
    voltage: str | None = "V_m"
    threshold_mV: float = 0.0
    cell_annotation: str = "cell"
    frequency_annotation: str = "stimulus_frequency"


class Generate(BaseModel):
    """The NEST-made default recording."""
    model_config = ConfigDict(extra="forbid")
    cells: dict[str, tuple[float, float, float]] = Field(
        default_factory=lambda: {"hh_psc_alpha": (500.0, 100.0, 250.0), "aeif_cond_exp": (850.0, 120.0, 150.0),
                                 "iaf_psc_alpha": (380.0, 80.0, 100.0)},
        description="NEST model -> (I_0, I_1, sigma) in pA")
    frequencies: list[Frequency] = Field(default_factory=lambda: [1, 2, 5, 10, 20, 50, 100, 200], min_length=2)
    trials: int = Field(12, ge=2)
    duration: Time = 3000.0
    dt: Time = 0.1
    tau_noise: Time = 5.0


class Fit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_residual: float = Field(5.0, gt=0, description="deg")
    min_points: int = Field(3, ge=2)
    n_boot: int = Field(200, ge=10)


class Config(ProtocolBase):
    task: Literal["ephys-comparison"]
    data: dict = Field(default_factory=dict, description="{path: FILE} to use a recording; empty: NEST-made")
    channels: Channels = Channels()
    generate: Generate = Generate()
    fit: Fit = Fit()
    skip: NonNegativeTime = 200.0


def load_recording(cfg: Config, ctx) -> tuple:
    """The recording's blocks and where they came from (a user's file, or NEST written to NIX and read back)."""
    unknown = set(cfg.data) - {"path"}
    if unknown:
        raise ValueError(f"data: unknown key(s) {', '.join(sorted(unknown))}; expected 'path'")
    if cfg.data.get("path"):
        path = Path(cfg.data["path"])
        if not path.is_file():
            raise FileNotFoundError(f"data.path: recording {path} does not exist")
        return read_blocks(path), str(path)
    from ..data.nest_ephys import simulate
    g = cfg.generate
    block = simulate(dict(g.cells), g.frequencies, g.trials, g.duration, g.dt, g.tau_noise, seed=ctx.seed)
    path = write_block(block, ctx.path("nest_recording.nix"))
    return read_blocks(path), str(path.name)


def fit_cell(freqs, H, fcfg: Fit, tau_min, seed: int) -> dict:
    """Phase fit over the widest range [f_min, f_k] whose residuals all stay within ``max_residual``."""
    m = H.mean(axis=0)
    out = {"fitted": False, "range_hz": None}
    for k in range(len(freqs), fcfg.min_points - 1, -1):
        f = freqs[:k] * pq.Hz
        fit = transfer.fit_gle(f, np.abs(m[:k]), np.degrees(np.angle(m[:k])) * pq.deg, use_gain=False,
                               tau_bounds=(tau_min, 10 * pq.s))
        if float(fit["max_phase_residual"]) <= fcfg.max_residual:
            boot = transfer.bootstrap_fit(f, H[:, :k], n_boot=fcfg.n_boot, seed=seed, use_gain=False)
            H_fit = transfer.gle_response(freqs * pq.Hz, fit["tau_m"], fit["tau_r"], fit["g0"])
            out = {"fitted": True, "range_hz": [float(freqs[0]), float(freqs[k - 1])],
                   "tau_m_ms": float(fit["tau_m"]), "tau_r_ms": float(fit["tau_r"]), "g0_hz_per_pa": fit["g0"],
                   "tau_m_ci_ms": boot["tau_m_ci"].magnitude, "tau_r_ci_ms": boot["tau_r_ci"].magnitude,
                   "max_phase_residual_deg": float(fit["max_phase_residual"]),
                   "phase_fit_deg": np.degrees(np.angle(H_fit)),
                   "residual_outside_range_deg": np.degrees(np.angle(m[k:] / H_fit[k:]))}
            break
    return out


def gle_sweeps(sweeps, fit: dict, mean_rate: float, dt_ms: float, engine: str, seed: int) -> list:
    """The fitted GLE neuron driven by each sweep's current; Poisson spikes from its rate (Hz)."""
    from elephant.spike_train_generation import inhomogeneous_poisson_process
    tm, tr = max(fit["tau_m_ms"], dt_ms), max(fit["tau_r_ms"], dt_ms)
    spec = NetworkSpec(1, (LayerSpec(1, tm * pq.ms, tr * pq.ms, "linear", bias=False),))
    net = get_engine(engine).build(spec, dt_ms, weights=[np.ones((1, 1))])
    n = min(s.current.shape[0] for s in sweeps)
    x = np.stack([s.current.magnitude[:n, 0] - s.current.magnitude[:n, 0].mean() for s in sweeps], axis=1)[:, :, None]
    r = net.run(x, record=("r_out",))["r_out"][:, :, 0]
    np.random.seed(seed)  # Elephant's Poisson generator draws from numpy's global state
    out = []
    for j, s in enumerate(sweeps):
        rate = np.clip(mean_rate + fit["g0_hz_per_pa"] * r[:, j], 0, None)
        sig = neo.AnalogSignal(rate[:, None], units="Hz", sampling_period=s.current.sampling_period,
                               t_start=s.current.t_start)
        st = inhomogeneous_poisson_process(sig)  # on the recording's spike-train interval, as the PSTH expects
        st = neo.SpikeTrain(st.times, t_start=s.spiketrain.t_start, t_stop=s.spiketrain.t_stop, name="gle spikes")
        out.append(ephys.Sweep(s.cell, s.frequency, s.trial, s.current[:n], st))
    return out


def _summary(stats: dict) -> dict:
    H = stats["responses"]
    m = H.mean(axis=0)
    return {"frequencies_hz": stats["frequencies_hz"], "phase_deg": np.degrees(np.angle(m)),
            "phase_sem_deg": np.degrees(np.angle(H / m)).std(axis=0, ddof=1) / np.sqrt(len(H)),
            "gain_hz_per_na": np.abs(m) * 1e3, "mean_rate_hz": stats["mean_rate_hz"], "cv": stats["cv"],
            "isi_median_ms": float(np.median(stats["isi_ms"]))}


def run(cfg: Config, ctx) -> dict:
    # Elephant notes each spike it moves by a rounding error into the next bin (one line per sweep)
    logging.getLogger("elephant").setLevel(logging.ERROR)
    import elephant.utils
    elephant.utils.logger.setLevel(logging.ERROR)
    blocks, source = load_recording(cfg, ctx)
    ch = cfg.channels
    sweeps = []
    for b in blocks:
        sweeps += ephys.sweeps_from_block(b, ch.current, ch.spikes, ch.voltage, ch.threshold_mV * pq.mV,
                                          ch.cell_annotation, ch.frequency_annotation, where=source)
    rates = {s.current.sampling_rate.rescale(pq.Hz).item() for s in sweeps}
    if len(rates) > 1:
        raise ValueError(f"{source}: sweeps are sampled at different rates {sorted(rates)} Hz; resample first")
    dt_ms = float(sweeps[0].current.sampling_period.rescale(pq.ms))
    rec = ephys.cell_statistics(sweeps, cfg.skip * pq.ms)
    cells, isis = {}, {}
    for cell, st in rec.items():
        freqs = st["frequencies_hz"]
        fit = fit_cell(freqs, st["responses"], cfg.fit, dt_ms * pq.ms, ctx.seed)
        entry = {"recording": _summary(st), "fit": fit}
        isis[cell] = {"recording": st["isi_ms"]}
        if fit["fitted"]:
            own = [s for s in sweeps if s.cell == cell]
            g = ephys.cell_statistics(gle_sweeps(own, fit, st["mean_rate_hz"], dt_ms, ctx.engine, ctx.seed),
                                      cfg.skip * pq.ms)[cell]
            entry["gle"] = _summary(g)
            isis[cell]["gle"] = g["isi_ms"]
        cells[cell] = entry
    _plot(ctx, cells, isis)
    table = [{"cell": c, "statistic": k, "recording": e["recording"][k], "gle": e.get("gle", {}).get(k)}
             for c, e in cells.items() for k in ("mean_rate_hz", "cv", "isi_median_ms", "phase_deg", "gain_hz_per_na")]
    return {"source": source, "time_unit": "ms", "n_sweeps": len(sweeps), "cells": cells, "table": table,
            "published": {"phase": PUBLISHED_PHASE, "gain": PUBLISHED_GAIN_NOTE}}


def _plot(ctx, cells: dict, isis: dict) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 8))
    ax_ph, ax_g, ax_r, ax_isi = fig.subplots(2, 2).ravel()
    for i, (cell, e) in enumerate(cells.items()):
        c, rec = f"C{i}", e["recording"]
        f = rec["frequencies_hz"]
        ax_ph.errorbar(f, rec["phase_deg"], yerr=rec["phase_sem_deg"], fmt="o", c=c, label=f"{cell} (NEST)")
        ax_g.plot(f, rec["gain_hz_per_na"], "o-", c=c, label=f"{cell}")
        fit = e["fit"]
        if fit["fitted"]:
            fine = np.geomspace(f.min(), f.max(), 200)
            H = transfer.gle_response(fine * pq.Hz, fit["tau_m_ms"] * pq.ms, fit["tau_r_ms"] * pq.ms, fit["g0_hz_per_pa"])
            lo, hi = fit["range_hz"]
            ax_ph.plot(fine, np.degrees(np.angle(H)), c=c, lw=1,
                       label=f"GLE fit {lo:g}-{hi:g} Hz: tau_m={fit['tau_m_ms']:.3g}, tau_r={fit['tau_r_ms']:.3g} ms")
            ax_ph.plot(f, e["gle"]["phase_deg"], "x", c=c, ms=8)
            ax_g.plot(fine, np.abs(H) * 1e3, c=c, lw=1, ls="--")
            ax_g.plot(f, e["gle"]["gain_hz_per_na"], "x", c=c, ms=8)
        ax_r.bar(np.array([0, 1]) + 3 * i, [rec["mean_rate_hz"], e.get("gle", {}).get("mean_rate_hz", np.nan)],
                 color=[c, "none"], edgecolor=c, hatch=["", "//"])
        bins = np.linspace(0, 200, 51)
        ax_isi.hist(isis[cell]["recording"], bins, histtype="step", color=c, density=True, label=f"{cell} CV {rec['cv']:.2f}")
        if "gle" in isis[cell]:
            ax_isi.hist(isis[cell]["gle"], bins, histtype="step", ls="--", color=c, density=True,
                        label=f"GLE + Poisson CV {e['gle']['cv']:.2f}")
    for k, (fp, ph, label) in enumerate(PUBLISHED_PHASE):
        ax_ph.plot(fp, ph, "s" if "strongly" in label else "D", c="k", mfc="none",
                   label=label if k in (0, 2) else None)
    ax_ph.axhline(0, c="k", lw=0.5)
    ax_ph.set(xscale="log", xlabel="stimulus frequency (Hz)", ylabel="rate phase re current (deg, + = lead)",
              title="transfer function: phase (dots NEST, x fitted GLE neuron simulated)")
    ax_ph.legend(fontsize=6)
    ax_g.set(xscale="log", yscale="log", xlabel="stimulus frequency (Hz)", ylabel="gain (Hz/nA)")
    ax_g.set_title("gain; " + PUBLISHED_GAIN_NOTE, fontsize=6)
    ax_g.legend(fontsize=7)
    ax_r.set(xticks=[3 * i + 0.5 for i in range(len(cells))], xticklabels=list(cells), ylabel="mean rate (Hz)",
             title="mean rate: recording (filled) vs GLE (hatched)")
    ax_isi.set(xlabel="ISI (ms)", ylabel="density", title="ISI distributions (solid NEST, dashed GLE + Poisson)")
    ax_isi.legend(fontsize=6)
    fig.tight_layout()
    ctx.save_figure(fig, "ephys_comparison.png")
