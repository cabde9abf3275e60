r"""Transfer function of a neuron (input current to output rate) and a GLE fit of it.

A linear GLE neuron maps its input to its output with

.. math:: H(\omega) = g_0\,\frac{1 + i\omega\tau_r}{1 + i\omega\tau_m}, \qquad
    \arg H = \arctan\omega\tau_r - \arctan\omega\tau_m

(Ellenberger et al. 2026; :mod:`cortical_gle.theory`).  :func:`transfer_function`
measures :math:`H` at discrete frequencies (lock-in on sinusoidal stimuli) or on
a frequency grid (broadband stimulus, cross-spectral estimate
:math:`\hat H = S_{xy}/S_{xx}`, Bendat & Piersol, *Random Data*, 4th ed., ch. 6);
:func:`fit_gle` fits :math:`\tau_m, \tau_r, g_0`; :func:`bootstrap_fit` gives
percentile intervals by resampling trials (Efron & Tibshirani 1993, ch. 13).
"""
from __future__ import annotations

import warnings

import neo
import numpy as np
import quantities as pq
from scipy.optimize import least_squares

from .phase import phase_and_gain
from .spectra import coherence, power_spectrum, _same_grid
from .spikes import psth


def rate_signal(spiketrains, like: neo.AnalogSignal) -> neo.AnalogSignal:
    r"""Spike trains as a rate on the sampling grid of ``like`` (a PSTH with bins of one sample).

    Bin-centred (:func:`.spikes.psth`), so a sinusoidal modulation keeps its phase
    (an uncentred bin of width :math:`\Delta` would add a lag of :math:`\omega\Delta/2`).
    """
    half = like.sampling_period / 2
    with warnings.catch_warnings():  # a spike in the last half bin falls outside the grid: Elephant says so
        warnings.filterwarnings("ignore", "Binning discarded")
        rate = psth(spiketrains, like.sampling_period, t_start=like.t_start - half, t_stop=like.t_stop - half)
    n = min(rate.shape[0], like.shape[0])
    return neo.AnalogSignal(rate.magnitude[:n], units=rate.units, sampling_period=like.sampling_period,
                            t_start=like.t_start, name="rate")


def transfer_function(response: neo.AnalogSignal, stimulus: neo.AnalogSignal, frequency=None,
                      frequency_resolution=2 * pq.Hz):
    r"""Gain and phase of ``response`` relative to ``stimulus``.

    With ``frequency`` (a sinusoidal stimulus): lock-in fit at that frequency
    (:func:`.phase.phase_and_gain`, whole cycles).  Without: Welch cross-spectrum
    of a broadband stimulus,

    .. math:: |\hat H(f)| = \sqrt{C_{xy}(f)\,S_{yy}(f)/S_{xx}(f)} = |S_{xy}|/S_{xx},
        \qquad \arg\hat H(f) = \arg S_{xy}(f)

    (Elephant's ``welch_psd`` and ``welch_coherence``).

    Returns
    -------
    freqs : quantity (Hz)
    gain : quantity (response units / stimulus units), shape (freqs,) or (freqs, channels)
    phase : quantity (deg, positive = response leads)

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> t = np.arange(20000) * 1e-4
    >>> x = neo.AnalogSignal(np.sin(2*np.pi*20*t)[:, None], units='pA', sampling_period=0.1*pq.ms)
    >>> y = neo.AnalogSignal(3 * np.sin(2*np.pi*20*t + np.pi/4)[:, None], units='Hz', sampling_period=0.1*pq.ms)
    >>> f, g, ph = transfer_function(y, x, 20 * pq.Hz)
    >>> round(float(g[0]), 6), round(float(ph[0]), 6)
    (3.0, 45.0)
    """
    _same_grid(response, stimulus)
    if frequency is not None:
        phase, gain = phase_and_gain(response, stimulus, frequency)
        units = response.units / stimulus.units
        return pq.Quantity(frequency).rescale(pq.Hz).reshape(1), gain.rescale(units.dimensionality), phase
    if stimulus.shape[1] != 1:
        raise ValueError(f"stimulus must have one channel, got {stimulus.shape[1]}")
    freqs, coh, phase = coherence(stimulus, response, frequency_resolution)
    _, sxx = power_spectrum(stimulus, frequency_resolution)
    _, syy = power_spectrum(response, frequency_resolution)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.sqrt(coh.magnitude * syy.magnitude / sxx.magnitude)
    return freqs, gain * (response.units / stimulus.units), phase


def gle_response(frequency, tau_m, tau_r, g0=1.0) -> np.ndarray:
    r"""Complex :math:`H(\omega) = g_0 (1 + i\omega\tau_r)/(1 + i\omega\tau_m)` (quantities in, complex array out)."""
    w = 2 * np.pi * pq.Quantity(frequency).rescale(pq.Hz).magnitude
    tm = pq.Quantity(tau_m).rescale(pq.s).magnitude
    tr = pq.Quantity(tau_r).rescale(pq.s).magnitude
    return g0 * (1 + 1j * w * tr) / (1 + 1j * w * tm)


def fit_gle(frequency, gain, phase, use_gain: bool = True, tau_bounds=(0.01 * pq.ms, 10 * pq.s), start=None) -> dict:
    r"""Least-squares :math:`\tau_m, \tau_r, g_0` of the GLE transfer function.

    Minimises

    .. math:: \sum_k \left[\mathrm{wrap}(\phi_k - \arg H(\omega_k))\right]^2
        + [\ln g_k - \ln|H(\omega_k)|]^2

    over :math:`\ln\tau_m, \ln\tau_r, \ln g_0` (phase in rad: one radian weighs
    as much as a factor :math:`e` in gain).  With ``use_gain=False`` only the
    phase enters and :math:`g_0` is the geometric-mean gain ratio.

    ``start = (tau_m, tau_r, g0)`` (ms) starts one local search there instead of several.

    Returns
    -------
    dict with ``tau_m``, ``tau_r`` (ms), ``g0`` and ``max_phase_residual`` (deg)
    """
    f = pq.Quantity(frequency).rescale(pq.Hz).magnitude.ravel()
    ph = np.radians(pq.Quantity(phase, pq.deg).rescale(pq.deg).magnitude.ravel())
    g = np.asarray(pq.Quantity(gain).magnitude, dtype=float).ravel()
    if not (len(f) == len(ph) == len(g)) or len(f) < 2:
        raise ValueError(f"fit_gle needs matching frequency, gain and phase with at least 2 points, "
                         f"got {len(f)}, {len(g)}, {len(ph)}")
    if use_gain and not np.all(g > 0):
        raise ValueError("fit_gle: gains must be positive to fit them (use_gain=False fits the phase only)")
    lo, hi = [np.log(pq.Quantity(b).rescale(pq.ms).magnitude.item()) for b in tau_bounds]
    w = 2 * np.pi * f * 1e-3  # rad per ms

    def resid(p):
        tm, tr, g0 = np.exp(p)
        H = g0 * (1 + 1j * w * tr) / (1 + 1j * w * tm)
        r = np.angle(np.exp(1j * (ph - np.angle(H))))
        return np.concatenate([r, np.log(g) - np.log(np.abs(H))]) if use_gain else r

    if start is not None:
        starts = [np.log([start[0], start[1], start[2]])]
    else:  # a few starts: the phase surface has a ridge along tau_m = tau_r
        g_mean = float(np.exp(np.mean(np.log(g[g > 0])))) if np.any(g > 0) else 1.0
        starts = [np.log([tm0, tm0 * ratio, g_mean]) for tm0 in (1.0, 10.0, 100.0) for ratio in (0.1, 2.0)]
    best = None
    for p0 in starts:
        p0 = np.clip(p0, [lo, lo, -50], [hi, hi, 50])
        sol = least_squares(resid, p0, bounds=([lo, lo, -50], [hi, hi, 50]))
        if best is None or sol.cost < best.cost:
            best = sol
    tm, tr, g0 = np.exp(best.x)
    if not use_gain:  # g0 does not enter the phase: the least-squares gain in log given the taus
        g0 = float(np.exp(np.mean(np.log(g) - np.log(np.abs((1 + 1j * w * tr) / (1 + 1j * w * tm))))))
    H = gle_response(f * pq.Hz, tm * pq.ms, tr * pq.ms)
    res = np.degrees(np.angle(np.exp(1j * (ph - np.angle(H)))))
    return {"tau_m": float(tm) * pq.ms, "tau_r": float(tr) * pq.ms, "g0": float(g0),
            "max_phase_residual": float(np.max(np.abs(res))) * pq.deg, "phase_residual": res * pq.deg}


def bootstrap_fit(frequency, responses, n_boot: int = 200, seed: int = 0, use_gain: bool = True,
                  level: float = 0.95) -> dict:
    r"""Fit of the trial-mean response and percentile intervals from trials resampled with replacement.

    Parameters
    ----------
    frequency : quantity (Hz), shape (freqs,)
    responses : complex array, shape (trials, freqs)
        :math:`H` of each trial (gain times :math:`e^{i\phi}`).

    Returns
    -------
    dict: the :func:`fit_gle` result of the mean over trials plus ``tau_m_ci``, ``tau_r_ci``
    (ms, ``level`` percentile interval).
    """
    responses = np.asarray(responses)
    if responses.ndim != 2 or responses.shape[0] < 2:
        raise ValueError(f"bootstrap_fit needs responses of shape (trials >= 2, freqs), got {responses.shape}")

    def fit(H, start=None):
        m = H.mean(axis=0)
        return fit_gle(frequency, np.abs(m), np.degrees(np.angle(m)) * pq.deg, use_gain, start=start)

    out = fit(responses)
    start = (float(out["tau_m"]), float(out["tau_r"]), out["g0"])
    rng = np.random.default_rng(seed)
    draws = np.array([[float(r["tau_m"]), float(r["tau_r"])] for r in
                      (fit(responses[rng.integers(0, len(responses), len(responses))], start) for _ in range(n_boot))])
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out["tau_m_ci"] = np.percentile(draws[:, 0], q) * pq.ms
    out["tau_r_ci"] = np.percentile(draws[:, 1], q) * pq.ms
    return out
