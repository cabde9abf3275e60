r"""Closed-form results of GLE theory used as test and plot references.

A linear GLE neuron filters its input with the transfer function
:math:`H(\omega) = (1 + i\omega\tau_r)/(1 + i\omega\tau_m)` (docs/model.md#continuous-model), so

.. math::

    \Delta\phi(\omega) = \arctan(\omega\tau_r) - \arctan(\omega\tau_m), \qquad
    |H(\omega)| = \sqrt{1+(\omega\tau_r)^2}\,/\,\sqrt{1+(\omega\tau_m)^2}.

References: Ellenberger et al., "Backpropagation through space, time, and the
brain", Nature Communications 17:66 (2026).
"""
from __future__ import annotations

import numpy as np
import quantities as pq

from .units import to_magnitude


def _omega_tau(frequency, tau):
    f = np.asarray(to_magnitude(frequency, pq.Hz, "frequency"), dtype=float)
    t = np.asarray(to_magnitude(tau, pq.s, "tau"), dtype=float)
    return 2 * np.pi * f * t


def phase_advance(frequency, tau_m, tau_r):
    """Phase of the output relative to a sinusoidal input (positive = lead).

    Parameters
    ----------
    frequency : quantity (Hz)
    tau_m, tau_r : quantity (time)

    Returns
    -------
    quantity (deg)

    Examples
    --------
    >>> import quantities as pq
    >>> float(phase_advance(10 * pq.Hz, 10 * pq.ms, 10 * pq.ms))
    0.0
    """
    return np.degrees(np.arctan(_omega_tau(frequency, tau_r)) - np.arctan(_omega_tau(frequency, tau_m))) * pq.deg


def gain(frequency, tau_m, tau_r):
    """Amplitude ratio output/input of a linear GLE neuron (dimensionless)."""
    a, b = _omega_tau(frequency, tau_r), _omega_tau(frequency, tau_m)
    return np.sqrt(1 + a * a) / np.sqrt(1 + b * b) * pq.dimensionless
