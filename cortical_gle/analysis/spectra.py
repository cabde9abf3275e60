r"""Power spectra and coherence of rate (or any analog) signals through Elephant's Welch estimators.

Welch's method averages periodograms of overlapping Hann-windowed segments
(Welch 1967, IEEE Trans Audio Electroacoust 15:70): with segment spectra
:math:`X_s(f)`, :math:`S_{xy}(f) \propto \sum_s X_s^*(f) Y_s(f)`.
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq
from elephant import spectral


def _same_grid(x: neo.AnalogSignal, y: neo.AnalogSignal):
    for name, s in (("x", x), ("y", y)):
        if not isinstance(s, neo.AnalogSignal):
            raise TypeError(f"{name} must be a neo.AnalogSignal, got {type(s).__name__}")
    if x.sampling_rate.rescale(pq.Hz) != y.sampling_rate.rescale(pq.Hz):
        raise ValueError(f"sampling rates differ: {x.sampling_rate.rescale(pq.Hz)} vs "
                         f"{y.sampling_rate.rescale(pq.Hz)}; resample one signal first")
    if x.shape[0] != y.shape[0] or abs(float((x.t_start - y.t_start).rescale(pq.s))) > 1e-9:
        raise ValueError(f"signals cover different samples ({x.shape[0]} from {x.t_start} vs "
                         f"{y.shape[0]} from {y.t_start})")


def power_spectrum(signal: neo.AnalogSignal, frequency_resolution=1 * pq.Hz):
    r"""One-sided power spectral density :math:`S_{xx}(f)` per channel (``elephant.spectral.welch_psd``).

    Normalised so that :math:`\int_0^{f_s/2} S_{xx}\,df = \mathrm{Var}(x)`.

    Returns
    -------
    freqs : quantity (Hz)
    psd : quantity (signal units**2 / Hz), shape (freqs, channels)
    """
    if not isinstance(signal, neo.AnalogSignal):
        raise TypeError(f"signal must be a neo.AnalogSignal, got {type(signal).__name__}")
    freqs, psd = spectral.welch_psd(signal, frequency_resolution=frequency_resolution)
    return freqs, psd.T


def coherence(x: neo.AnalogSignal, y: neo.AnalogSignal, frequency_resolution=1 * pq.Hz):
    r"""Magnitude-squared coherence and phase of ``y`` relative to ``x`` (``elephant.spectral.welch_coherence``).

    .. math:: C_{xy}(f) = \frac{|S_{xy}(f)|^2}{S_{xx}(f) S_{yy}(f)}, \qquad
        \phi_{xy}(f) = \arg S_{xy}(f)

    with :math:`S_{xy} = \langle X^* Y\rangle` (positive phase: ``y`` leads).

    Returns
    -------
    freqs : quantity (Hz)
    coherence : quantity (dimensionless), shape (freqs, channels)
    phase : quantity (deg), shape (freqs, channels)
    """
    _same_grid(x, y)
    freqs, coh, lag = spectral.welch_coherence(x, y, frequency_resolution=frequency_resolution)
    return freqs, np.asarray(coh) * pq.dimensionless, lag.rescale(pq.deg)
