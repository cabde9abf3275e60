"""Phase advance of single GLE neurons driven by sinusoids (docs/model.md#tasks-and-published-numbers).

Each neuron (one ``(tau_m, tau_r)`` pair, linear ``phi``, input weight 1) is
driven by ``sin(2 pi f t)``; every frequency is one batch element, so one
simulation covers the whole table.  The output sample of step ``t`` is the
prospective rate computed from the input at ``t * dt`` and is paired with that
time.  Phase and gain are measured with a lock-in fit over whole cycles after
the transient and compared with ``atan(w tau_r) - atan(w tau_m)``.
"""
from __future__ import annotations

from typing import Literal

import neo
import numpy as np
import quantities as pq
from pydantic import BaseModel, ConfigDict, Field

from ..analysis.phase import phase_and_gain
from ..engines import get_engine
from ..protocol import ProtocolBase
from ..spec import LayerSpec, NetworkSpec
from .. import theory
from .fields import Frequency, Time


class Neuron(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tau_m: Time
    tau_r: Time


class Config(ProtocolBase):
    task: Literal["phase-advance"]
    dt: Time = 0.01
    neurons: list[Neuron] = Field(min_length=1)
    frequencies: list[Frequency] = Field(min_length=1)
    settle: float = Field(5.0, ge=0, description="transient, in multiples of the largest tau_m")
    cycles: int = Field(3, ge=1, description="whole cycles of the lowest frequency that are measured")


def simulate(cfg: Config, engine: str = "numpy", progress: bool = False, ctx=None):
    """Simulate every neuron at every frequency; returns (t_ms, x, r) with r (steps, freqs, neurons).

    With ``ctx.record`` set, the recorded variables go to ``ctx.record_segment`` (batch element = frequency).
    """
    tau_m = np.array([n.tau_m for n in cfg.neurons])
    tau_r = np.array([n.tau_r for n in cfg.neurons])
    freqs = np.array(cfg.frequencies)
    spec = NetworkSpec(1, (LayerSpec(len(tau_m), tau_m * pq.ms, tau_r * pq.ms, "linear", bias=False),))
    net = get_engine(engine).build(spec, cfg.dt, weights=[np.ones((len(tau_m), 1))])
    duration = cfg.settle * tau_m.max() + cfg.cycles * 1e3 / freqs.min()
    n_steps = int(np.ceil(duration / cfg.dt))
    t_ms = np.arange(n_steps) * cfg.dt
    x = np.sin(2 * np.pi * freqs[None, :] * t_ms[:, None] * 1e-3)[:, :, None]
    extra = tuple(v for v in (ctx.record if ctx is not None else ()) if v != "r_out")
    out = net.run(x, record=("r_out",) + extra, progress=progress)
    if ctx is not None:
        ctx.record_segment(out, spec, cfg.dt, "sinusoids", frequencies_hz=list(freqs), batch_is="frequency")
    return t_ms, x[:, :, 0], out["r_out"]


def measure(cfg: Config, t_ms, x, r):
    """Lock-in phase (deg) and gain per neuron and frequency, as Neo signals go in."""
    settle = cfg.settle * max(n.tau_m for n in cfg.neurons)
    dt = cfg.dt
    phase = np.empty((len(cfg.neurons), len(cfg.frequencies)))
    gain = np.empty_like(phase)
    for k, f in enumerate(cfg.frequencies):
        period_steps = 1e3 / f / dt
        n_cycles = int((t_ms[-1] - settle) * f * 1e-3)
        if n_cycles < 1:
            raise ValueError(f"{f} Hz: not a whole cycle after the transient; raise 'cycles'")
        start = len(t_ms) - int(round(n_cycles * period_steps))
        kw = dict(sampling_period=dt * pq.ms, t_start=t_ms[start] * pq.ms, units="dimensionless")
        stim = neo.AnalogSignal(x[start:, k, None], **kw)
        resp = neo.AnalogSignal(r[start:, k, :], **kw)
        ph, g = phase_and_gain(resp, stim, f * pq.Hz)
        phase[:, k], gain[:, k] = ph.magnitude, g.magnitude
    return phase, gain


def run(cfg: Config, ctx) -> dict:
    t_ms, x, r = simulate(cfg, ctx.engine, progress=ctx.progress, ctx=ctx)
    phase, gain = measure(cfg, t_ms, x, r)
    freqs = np.array(cfg.frequencies)
    neurons = []
    for i, n in enumerate(cfg.neurons):
        ph_th = theory.phase_advance(freqs * pq.Hz, n.tau_m * pq.ms, n.tau_r * pq.ms).magnitude
        g_th = theory.gain(freqs * pq.Hz, n.tau_m * pq.ms, n.tau_r * pq.ms).magnitude
        neurons.append({
            "tau_m": n.tau_m, "tau_r": n.tau_r, "frequencies_hz": freqs,
            "phase_deg": phase[i], "phase_theory_deg": ph_th, "gain": gain[i], "gain_theory": g_th,
            "max_phase_error_deg": float(np.max(np.abs(phase[i] - ph_th))),
            "max_gain_rel_error": float(np.max(np.abs(gain[i] / g_th - 1))),
        })
    _plot(ctx, freqs, neurons)
    return {
        "time_unit": "ms", "dt": cfg.dt, "n_steps": len(t_ms), "neurons": neurons,
        "max_phase_error_deg": max(n["max_phase_error_deg"] for n in neurons),
        "max_gain_rel_error": max(n["max_gain_rel_error"] for n in neurons),
    }


def _plot(ctx, freqs, neurons):
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    fine = np.geomspace(freqs.min() / 1.5, freqs.max() * 1.5, 200)
    for i, n in enumerate(neurons):
        c = f"C{i}"
        label = f"tau_m={n['tau_m']:g} ms, tau_r={n['tau_r']:g} ms"
        ax1.plot(fine, theory.phase_advance(fine * pq.Hz, n["tau_m"] * pq.ms, n["tau_r"] * pq.ms), c=c, lw=1)
        ax1.plot(freqs, n["phase_deg"], "o", c=c, label=label)
        ax2.plot(fine, theory.gain(fine * pq.Hz, n["tau_m"] * pq.ms, n["tau_r"] * pq.ms), c=c, lw=1)
        ax2.plot(freqs, n["gain"], "o", c=c)
    ax1.set(xscale="log", xlabel="input frequency (Hz)", ylabel="phase of r relative to input (deg)",
            title="phase: simulated (dots) vs atan(w tau_r) - atan(w tau_m)")
    ax2.set(xscale="log", yscale="log", xlabel="input frequency (Hz)", ylabel="gain |r|/|x|", title="gain")
    ax1.axhline(0, c="k", lw=0.5)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure(fig, "phase_advance.png")
