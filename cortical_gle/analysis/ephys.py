r"""Current-clamp recordings (any Neo-readable file) to transfer functions and spike statistics.

A recording is a set of segments (sweeps), each with the injected current
(an AnalogSignal in a current unit) and the spikes (a SpikeTrain, or found by
threshold crossing in a membrane-potential AnalogSignal); segments are grouped
by a cell annotation and carry their stimulus frequency as an annotation (or it
is taken from the peak of the current's spectrum).

Per cell and frequency the rate response to the sinusoid is measured by a
lock-in fit of the bin-centred PSTH over whole cycles after ``skip``
(:func:`.transfer.rate_signal`, :func:`.transfer.transfer_function`), giving
one complex :math:`H_{k}(f) = g\,e^{i\phi}` per trial :math:`k`.
"""
from __future__ import annotations

from dataclasses import dataclass

import neo
import numpy as np
import quantities as pq

from . import spikes as spk
from .transfer import rate_signal, transfer_function


@dataclass
class Sweep:
    cell: str
    frequency: float  # Hz
    trial: int
    current: neo.AnalogSignal
    spiketrain: neo.SpikeTrain


def _names(seg):
    return [s.name for s in seg.analogsignals] + [s.name for s in seg.spiketrains]


def _find(seg, kind, name, where):
    objs = seg.analogsignals if kind == "analog" else seg.spiketrains
    for s in objs:
        if s.name == name:
            return s
    raise ValueError(f"{where}: no channel named {name!r} in segment {seg.name!r}; it has "
                     f"{', '.join(map(repr, _names(seg))) or 'no channels'}")


def _dominant_frequency(current: neo.AnalogSignal) -> float:
    x = current.magnitude[:, 0] - current.magnitude[:, 0].mean()
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), float(current.sampling_period.rescale(pq.s)))
    return float(f[1:][np.argmax(spec[1:])])


def sweeps_from_block(block: neo.Block, current: str = "I_inj", spikes: str | None = "spikes",
                      voltage: str | None = "V_m", threshold=0 * pq.mV, cell_annotation: str = "cell",
                      frequency_annotation: str = "stimulus_frequency", where: str = "recording") -> list:
    """Pick the channels named by the protocol from every segment; errors name what is missing."""
    from elephant.spike_train_generation import threshold_detection

    if not block.segments:
        raise ValueError(f"{where}: the file holds no segments")
    out = []
    for i, seg in enumerate(block.segments):
        I = _find(seg, "analog", current, where)
        if not I.units.dimensionality.simplified == pq.A.dimensionality.simplified:
            raise ValueError(f"{where}: channel {current!r} of segment {seg.name!r} has units "
                             f"{I.units.dimensionality}, expected a current (pA, nA)")
        I = I.rescale(pq.pA)
        if spikes is not None and any(s.name == spikes for s in seg.spiketrains):
            st = _find(seg, "spikes", spikes, where)
        elif voltage is not None:
            V = _find(seg, "analog", voltage, where)
            if V.units.dimensionality.simplified != pq.V.dimensionality.simplified:
                raise ValueError(f"{where}: channel {voltage!r} of segment {seg.name!r} has units "
                                 f"{V.units.dimensionality}, expected a voltage (mV)")
            if V.sampling_rate.rescale(pq.Hz) != I.sampling_rate.rescale(pq.Hz):
                raise ValueError(f"{where}: segment {seg.name!r}: {voltage!r} is sampled at "
                                 f"{V.sampling_rate.rescale(pq.Hz)}, {current!r} at {I.sampling_rate.rescale(pq.Hz)}")
            st = threshold_detection(V, threshold=threshold)
        else:
            raise ValueError(f"{where}: segment {seg.name!r} has no spike train {spikes!r} and no voltage channel "
                             f"is configured; it has {', '.join(map(repr, _names(seg)))}")
        if len(st) < 2:
            raise ValueError(f"{where}: segment {seg.name!r} has {len(st)} spike(s); the rate analysis needs spikes "
                             f"in every sweep (check the threshold or the channel)")
        f = seg.annotations.get(frequency_annotation)
        f = float(f) if f is not None else _dominant_frequency(I)
        cell = str(seg.annotations.get(cell_annotation, "cell"))
        out.append(Sweep(cell, f, int(seg.annotations.get("trial", i)), I, st))
    return out


def sweep_response(sw: Sweep, skip=200 * pq.ms) -> complex:
    r"""Complex rate response :math:`H = g\,e^{i\phi}` (Hz/pA) of one sweep at its stimulus frequency.

    Whole cycles after ``skip`` only (the lock-in's regressors are then orthogonal).
    """
    I = sw.current
    period = 1.0 / sw.frequency * pq.s
    t0 = I.t_start + pq.Quantity(skip)
    n_cyc = int(((I.t_stop - t0) / period).simplified)
    if n_cyc < 1:
        raise ValueError(f"sweep {sw.cell} {sw.frequency:g} Hz: no whole stimulus cycle after {skip}")
    i0 = int(round(float(((t0 - I.t_start) / I.sampling_period).simplified)))
    n = int(round(float((n_cyc * period / I.sampling_period).simplified)))
    stim = I[i0:i0 + n]
    rate = rate_signal(sw.spiketrain, I)[i0:i0 + n]
    _, g, ph = transfer_function(rate, stim, sw.frequency * pq.Hz)
    return complex(float(g.rescale(pq.Hz / pq.pA)[0]) * np.exp(1j * np.radians(float(ph[0]))))


def cell_statistics(sweeps: list, skip=200 * pq.ms) -> dict:
    """Per cell: frequencies, per-trial responses (trials, freqs), mean rate, CV and ISIs."""
    cells = {}
    for sw in sweeps:
        cells.setdefault(sw.cell, []).append(sw)
    out = {}
    for cell, sws in cells.items():
        freqs = sorted({s.frequency for s in sws})
        by_f = {f: [s for s in sws if s.frequency == f] for f in freqs}
        n_trials = min(len(v) for v in by_f.values())
        H = np.array([[sweep_response(by_f[f][k], skip) for f in freqs] for k in range(n_trials)])
        trains = [s.spiketrain for s in sws]
        dur = sum(float((st.t_stop - st.t_start).rescale(pq.s)) for st in trains)
        out[cell] = {
            "frequencies_hz": np.array(freqs), "responses": H,
            "mean_rate_hz": sum(len(st) for st in trains) / dur,
            "cv": float(spk.cv(trains)),
            "isi_ms": np.concatenate([spk.isi(st).magnitude for st in trains if len(st) > 1]),
        }
    return out
