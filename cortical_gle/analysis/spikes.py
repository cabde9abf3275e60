r"""Spike-train statistics through Elephant: rate, PSTH, ISI and CV, pairwise correlations.

Each function checks its input, calls the Elephant function that does the
work and returns quantities.  References: Denker et al., Elephant
(doi:10.5281/zenodo.1186602); Dayan & Abbott, *Theoretical Neuroscience*
(2001), ch. 1.
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq
from elephant import kernels, statistics
from elephant.conversion import BinnedSpikeTrain
from elephant.spike_train_correlation import correlation_coefficient


def _trains(spiketrains, name="spiketrains", min_spikes=0):
    if isinstance(spiketrains, neo.SpikeTrain):
        spiketrains = [spiketrains]
    spiketrains = list(spiketrains)
    if not spiketrains:
        raise ValueError(f"{name}: no spike trains given")
    for i, st in enumerate(spiketrains):
        if not isinstance(st, neo.SpikeTrain):
            raise TypeError(f"{name}[{i}] must be a neo.SpikeTrain, got {type(st).__name__}")
        if len(st) < min_spikes:
            raise ValueError(f"{name}[{i}] ({st.name or 'unnamed'}) has {len(st)} spikes; "
                             f"this analysis needs at least {min_spikes}")
    return spiketrains


def firing_rate(spiketrains, sampling_period, sigma=5 * pq.ms) -> neo.AnalogSignal:
    r"""Instantaneous rate, trial-averaged: spikes convolved with a Gaussian kernel.

    .. math:: \hat r(t) = \frac{1}{K}\sum_{k=1}^{K}\sum_j \kappa_\sigma(t - t^{(k)}_j),
        \qquad \kappa_\sigma(t) = \frac{e^{-t^2/2\sigma^2}}{\sqrt{2\pi}\sigma}

    (Nawrot et al. 1999, J Neurosci Methods 94:81; ``elephant.statistics.instantaneous_rate``).

    Returns
    -------
    neo.AnalogSignal, Hz, one channel

    Examples
    --------
    >>> import neo, quantities as pq
    >>> st = neo.SpikeTrain([100, 200, 300, 400] * pq.ms, t_stop=500 * pq.ms)
    >>> r = firing_rate(st, 1 * pq.ms, sigma=20 * pq.ms)
    >>> round(float(r.magnitude[150:350].mean()), 1)  # 4 spikes in 0.4 s, edges trimmed
    10.0
    """
    trains = _trains(spiketrains)
    # pool_spike_trains averages a list of trains into one channel (pool_trials pools only Trial objects)
    rate = statistics.instantaneous_rate(trains, sampling_period, kernel=kernels.GaussianKernel(sigma),
                                         pool_spike_trains=True)
    return rate.rescale(pq.Hz)


def psth(spiketrains, bin_size, t_start=None, t_stop=None) -> neo.AnalogSignal:
    r"""Peri-stimulus time histogram as a rate: :math:`\mathrm{PSTH}(t_b) = n_b / (K\,\Delta)`.

    :math:`n_b` spikes of all :math:`K` aligned trials in bin :math:`b` of width
    :math:`\Delta` (``elephant.statistics.time_histogram(output='rate')``;
    Gerstein & Kiang 1960, Biophys J 1:15).  Sample times are bin centres.
    """
    trains = _trains(spiketrains)
    h = statistics.time_histogram(trains, bin_size, t_start=t_start, t_stop=t_stop, output="rate").rescale(pq.Hz)
    return h.time_shift(pq.Quantity(bin_size) / 2)


def isi(spiketrain) -> pq.Quantity:
    r"""Inter-spike intervals :math:`\tau_j = t_{j+1} - t_j` (ms) of one train (``elephant.statistics.isi``)."""
    (st,) = _trains(spiketrain, "spiketrain", min_spikes=2)
    return statistics.isi(st).rescale(pq.ms)


def cv(spiketrains) -> pq.Quantity:
    r"""Coefficient of variation of the inter-spike intervals, pooled over trains.

    .. math:: C_V = \sqrt{\langle\tau^2\rangle - \langle\tau\rangle^2}\,/\,\langle\tau\rangle

    1 for a Poisson process, 0 for a clock (Softky & Koch 1993, J Neurosci 13:334).
    ``elephant.statistics.isi`` per train, ``elephant.statistics.cv`` on the pooled intervals.
    """
    trains = _trains(spiketrains)
    intervals = np.concatenate([statistics.isi(st).rescale(pq.ms).magnitude for st in trains if len(st) > 1])
    if len(intervals) < 2:
        raise ValueError(f"cv needs at least 2 inter-spike intervals, got {len(intervals)}")
    return statistics.cv(intervals) * pq.dimensionless


def pairwise_correlations(spiketrains, bin_size) -> pq.Quantity:
    r"""Pearson correlation of binned spike counts for every pair (matrix, dimensionless).

    .. math:: \rho_{ij} = \frac{\langle (b_i - \bar b_i)(b_j - \bar b_j)\rangle}
        {\sqrt{\langle (b_i - \bar b_i)^2\rangle \langle (b_j - \bar b_j)^2\rangle}}

    with :math:`b_i` the spike counts of train :math:`i` in bins of ``bin_size``
    (``elephant.spike_train_correlation.correlation_coefficient``; Cohen & Kohn 2011,
    Nat Neurosci 14:811).
    """
    trains = _trains(spiketrains, min_spikes=1)
    if len(trains) < 2:
        raise ValueError("pairwise_correlations needs at least 2 spike trains")
    return correlation_coefficient(BinnedSpikeTrain(trains, bin_size=bin_size)) * pq.dimensionless
