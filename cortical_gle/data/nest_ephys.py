r"""Synthetic current-clamp recordings from NEST's built-in neuron models, written as Neo/NIX.

Each neuron gets its own injected current

.. math:: I(t) = I_0 + I_1 \sin(2\pi f t) + \sigma\,\xi(t),

:math:`\xi` an Ornstein-Uhlenbeck process (unit variance, correlation time
``tau_noise``) drawn here and injected sample by sample through a
``step_current_generator``, so the file holds exactly the current the model
received.  NEST records the membrane potential (``multimeter``) and the spikes
(``spike_recorder``).  One Neo segment per (model, frequency, trial), annotated
``cell`` (the model name), ``stimulus_frequency`` (Hz) and ``trial``; channels
``I_inj`` (pA), ``V_m`` (mV) and the spike train ``spikes``.

The models are NEST's (Hodgkin & Huxley 1952 in ``hh_psc_alpha``; Brette &
Gerstner 2005, J Neurophysiol 94:3637 in ``aeif_cond_exp``; a leaky
integrate-and-fire neuron ``iaf_psc_alpha`` as the passive reference), with
NEST's default parameters.
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq

def ou_noise(n: int, dt_ms: float, tau_ms: float, rng: np.random.Generator) -> np.ndarray:
    r"""Unit-variance OU samples: :math:`\xi_{k+1} = a\xi_k + \sqrt{1-a^2}\,\eta_k`, :math:`a = e^{-dt/\tau}` (exact update)."""
    a = np.exp(-dt_ms / tau_ms)
    eta = rng.standard_normal(n) * np.sqrt(1 - a * a)
    eta[0] = rng.standard_normal()
    from scipy.signal import lfilter
    return lfilter([1.0], [1.0, -a], eta)


def simulate(cells: dict, frequencies, trials: int, duration_ms: float, dt_ms: float = 0.1,
             tau_noise_ms: float = 5.0, seed: int = 0) -> neo.Block:
    """Run every (cell, frequency, trial) neuron in one NEST simulation; returns a :class:`neo.Block`."""
    from ..engines.nest_.network import reset_kernel

    nest = reset_kernel()   # an engine network holding the kernel is told it was displaced
    nest.set_verbosity("M_ERROR")
    nest.resolution = dt_ms
    nest.rng_seed = seed + 1
    rng = np.random.default_rng(seed)
    n = int(round(duration_ms / dt_ms))
    # the generator switches at t_j = (j+1) dt (NEST needs times > 0) and holds I_j for one step: as a sampled
    # signal I_j belongs to the centre of its hold, t_j + dt/2 (otherwise a half-step lag: 3.6 deg at 200 Hz)
    t_switch = (np.arange(n) + 1) * dt_ms
    t = t_switch + dt_ms / 2
    jobs = []
    for cell, (i0, i1, sigma) in cells.items():
        for f in frequencies:
            for k in range(trials):
                current = i0 + i1 * np.sin(2 * np.pi * f * t * 1e-3) + sigma * ou_noise(n, dt_ms, tau_noise_ms, rng)
                neuron = nest.Create(cell)
                gen = nest.Create("step_current_generator",
                                  params={"amplitude_times": t_switch, "amplitude_values": current})
                nest.Connect(gen, neuron)
                mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": dt_ms})
                sr = nest.Create("spike_recorder")
                nest.Connect(mm, neuron)
                nest.Connect(neuron, sr)
                jobs.append((cell, float(f), k, current, mm, sr))
    nest.Simulate(duration_ms + dt_ms)
    block = neo.Block(name="nest current clamp", description=__doc__.split("\n\n")[0],
                      simulator=f"NEST {nest.__version__}", noise_tau_ms=tau_noise_ms, seed=seed)
    for cell, f, k, current, mm, sr in jobs:
        i0, i1, sigma = cells[cell]
        seg = neo.Segment(name=f"{cell} {f:g} Hz trial {k}", cell=cell, stimulus_frequency=f, trial=k,
                          I_0_pA=i0, I_1_pA=i1, sigma_pA=sigma)
        ev = mm.events
        order = np.argsort(ev["times"])
        v = ev["V_m"][order][:n]  # multimeter sample at t = (j+1) dt is V after step j
        seg.analogsignals.append(neo.AnalogSignal(current[:, None], units="pA", sampling_period=dt_ms * pq.ms,
                                                  t_start=t[0] * pq.ms, name="I_inj"))
        seg.analogsignals.append(neo.AnalogSignal(v[:, None], units="mV", sampling_period=dt_ms * pq.ms,
                                                  t_start=dt_ms * pq.ms, name="V_m"))
        seg.spiketrains.append(neo.SpikeTrain(np.sort(sr.events["times"]) * pq.ms, t_start=0 * pq.ms,
                                              t_stop=(duration_ms + dt_ms) * pq.ms, name="spikes"))
        block.segments.append(seg)
    return block
