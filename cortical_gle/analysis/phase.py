r"""Phase and gain of a response to a sinusoidal stimulus.

A least-squares fit of :math:`s(t) = a\sin\omega t + b\cos\omega t + c`
gives amplitude :math:`\sqrt{a^2+b^2}` and phase :math:`\operatorname{atan2}(b, a)`;
the response's phase minus the stimulus's is its lead, the amplitude ratio its gain.
Fitting over whole cycles makes the regressors orthogonal (a lock-in amplifier).
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq


def _check_signal(sig, name):
    if not isinstance(sig, neo.AnalogSignal):
        raise TypeError(f"{name} must be a neo.AnalogSignal, got {type(sig).__name__}")
    if sig.shape[0] < 3:
        raise ValueError(f"{name} needs at least 3 samples, got {sig.shape[0]}")
    if not np.all(np.isfinite(sig.magnitude)):
        raise ValueError(f"{name} contains NaN or inf")


def sinusoid_fit(signal: neo.AnalogSignal, frequency):
    """Amplitude (signal units) and phase (deg) of each channel at ``frequency``.

    Parameters
    ----------
    signal : neo.AnalogSignal, shape (samples, channels)
    frequency : quantity (Hz), scalar

    Returns
    -------
    amplitude : quantity, shape (channels,)
    phase : quantity (deg), shape (channels,), phase of ``sin`` is 0
    """
    _check_signal(signal, "signal")
    f = pq.Quantity(frequency).rescale(pq.Hz).magnitude.item()
    if not f > 0:
        raise ValueError(f"frequency must be positive, got {frequency}")
    t = signal.times.rescale(pq.s).magnitude
    w = 2 * np.pi * f
    X = np.column_stack([np.sin(w * t), np.cos(w * t), np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(X, signal.magnitude.reshape(len(t), -1), rcond=None)
    a, b = coef[0], coef[1]
    return np.hypot(a, b) * signal.units, np.degrees(np.arctan2(b, a)) * pq.deg


def phase_and_gain(response: neo.AnalogSignal, stimulus: neo.AnalogSignal, frequency):
    """Phase lead (deg, wrapped to (-180, 180]) and gain of ``response`` relative to ``stimulus``.

    Both signals must share their sampling times.  ``stimulus`` has one channel
    (or as many as ``response``).

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> t = np.arange(1000) * 1e-3
    >>> x = neo.AnalogSignal(np.sin(2*np.pi*5*t)[:, None], units='dimensionless', sampling_period=1*pq.ms)
    >>> y = neo.AnalogSignal(0.5*np.sin(2*np.pi*5*t + 0.3)[:, None], units='dimensionless', sampling_period=1*pq.ms)
    >>> ph, g = phase_and_gain(y, x, 5 * pq.Hz)
    >>> round(float(ph[0].rescale('rad')), 6), round(float(g[0]), 6)
    (0.3, 0.5)
    """
    _check_signal(stimulus, "stimulus")
    if response.shape[0] != stimulus.shape[0] or not np.allclose(
            response.times.rescale(pq.s).magnitude, stimulus.times.rescale(pq.s).magnitude):
        raise ValueError("response and stimulus must share their sampling times")
    amp_r, ph_r = sinusoid_fit(response, frequency)
    amp_s, ph_s = sinusoid_fit(stimulus, frequency)
    lead = (ph_r - ph_s).magnitude
    lead = (lead + 180.0) % 360.0 - 180.0
    ratio = amp_r.magnitude / amp_s.magnitude
    return lead * pq.deg, (ratio * (amp_r.units / amp_s.units)).simplified


def spike_phase(spiketrains, frequency, t_start=None, t_stop=None):
    r"""Phase (deg) and modulation depth of the pooled rate of spike trains at ``frequency``.

    For a rate :math:`\lambda(t) = \lambda_0 (1 + m \sin(\omega t + \varphi))` over whole
    cycles, the spike times :math:`t_k` of all trains give the unbiased estimates

    .. math:: \hat\varphi = \operatorname{atan2}\Big(\sum_k \cos\omega t_k, \sum_k \sin\omega t_k\Big),
        \qquad \hat m = \frac{2}{n}\Big|\sum_k e^{i\omega t_k}\Big|

    (the lock-in estimate of :func:`sinusoid_fit` applied to the spike train itself, no
    binning).  For Poisson spikes :math:`\operatorname{Var}\sum_k \sin\omega t_k \approx n/2`,
    so the standard error of the phase is :math:`\sqrt{2/n}/m` rad (Brillinger 1975,
    *Time Series*, ch. 5; vector strength, Goldberg & Brown 1969).

    Parameters
    ----------
    spiketrains : neo.SpikeTrain or list of them (pooled)
    frequency : quantity (Hz)
    t_start, t_stop : quantity, optional
        Analysis window (default: the trains' own); shortened to whole cycles.

    Returns
    -------
    phase : quantity (deg), the phase of ``sin`` is 0
    depth : quantity (dimensionless), m
    n_spikes : int
    stderr : quantity (deg), :math:`\sqrt{2/n}/m`
    """
    trains = [spiketrains] if isinstance(spiketrains, neo.SpikeTrain) else list(spiketrains)
    if not trains or not all(isinstance(st, neo.SpikeTrain) for st in trains):
        raise TypeError("spiketrains must be a neo.SpikeTrain or a non-empty list of them")
    f = pq.Quantity(frequency).rescale(pq.Hz).magnitude.item()
    if not f > 0:
        raise ValueError(f"frequency must be positive, got {frequency}")
    t0 = (trains[0].t_start if t_start is None else pq.Quantity(t_start)).rescale(pq.s).magnitude.item()
    t1 = (trains[0].t_stop if t_stop is None else pq.Quantity(t_stop)).rescale(pq.s).magnitude.item()
    cycles = np.floor((t1 - t0) * f + 1e-9)
    if cycles < 1:
        raise ValueError(f"the window {t1 - t0:g} s holds no whole cycle of {f:g} Hz")
    t1 = t0 + cycles / f
    t = np.concatenate([st.rescale(pq.s).magnitude for st in trains])
    t = t[(t >= t0) & (t < t1)]
    if len(t) < 2:
        raise ValueError(f"spike_phase needs spikes in the window, got {len(t)}")
    z = np.exp(1j * 2 * np.pi * f * t).sum()
    depth = 2 * abs(z) / len(t)
    phase = np.degrees(np.arctan2(z.real, z.imag))
    stderr = np.degrees(np.sqrt(2.0 / len(t)) / max(depth, 1e-12))
    return phase * pq.deg, depth * pq.dimensionless, int(len(t)), stderr * pq.deg
