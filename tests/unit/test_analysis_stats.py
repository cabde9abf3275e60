"""Elephant-backed statistics against processes whose statistics are known in closed form.

Seeded data; each tolerance is a multiple (about 4-5) of the estimator's standard error, stated per test.
"""
import neo
import numpy as np
import pytest
import quantities as pq
from elephant.spike_train_generation import StationaryPoissonProcess, inhomogeneous_poisson_process

from cortical_gle.analysis import spectra, spikes, transfer


def _poisson(rate, t_stop, seed, n=1):
    np.random.seed(seed)  # elephant's generators draw from numpy's global state
    return StationaryPoissonProcess(rate, t_stop=t_stop).generate_n_spiketrains(n)


def test_poisson_cv_is_one():
    """CV of a Poisson train is 1; with N ~ 10,000 intervals its standard error is ~1/sqrt(N) = 0.01."""
    st = _poisson(50 * pq.Hz, 200 * pq.s, seed=1)
    assert abs(float(spikes.cv(st)) - 1) < 0.05
    # a dead time d lowers it to 1 - d * rate' (rate' = 1/(1/rate - d)); here d = 10 ms, rate 50 Hz: CV = 0.5
    np.random.seed(2)
    st_ref = StationaryPoissonProcess(50 * pq.Hz, t_stop=200 * pq.s, refractory_period=10 * pq.ms).generate_spiketrain()
    assert abs(float(spikes.cv(st_ref)) - 0.5) < 0.03


def test_isi_mean_and_rate_of_poisson():
    """Mean ISI of a 40 Hz Poisson train is 25 ms (SE 25/sqrt(8000) = 0.28 ms); its rate is 40 Hz."""
    st = _poisson(40 * pq.Hz, 200 * pq.s, seed=3)[0]
    assert abs(float(spikes.isi(st).mean()) - 25.0) < 1.2
    r = spikes.firing_rate(st, 10 * pq.ms, sigma=50 * pq.ms)
    assert abs(float(r.magnitude[500:-500].mean()) - 40) < 1.5


def test_firing_rate_of_several_trains_is_one_trial_averaged_channel():
    """K trains of 40 Hz Poisson: one channel at 40 Hz (not K channels at 40/K Hz); SE ~ sqrt(40/(5*20 s)) Hz."""
    trains = _poisson(40 * pq.Hz, 20 * pq.s, seed=5, n=5)
    r = spikes.firing_rate(trains, 10 * pq.ms, sigma=50 * pq.ms)
    assert r.shape[1] == 1
    assert abs(float(r.magnitude[500:-500].mean()) - 40) < 2.0


def test_psth_recovers_sinusoidal_modulation():
    """PSTH of 200 trials of a 20 + 10 sin(2 pi 5 t) Hz inhomogeneous Poisson process.

    Lock-in on the PSTH: amplitude 10 Hz and phase 0; the amplitude's standard error is
    sqrt(2 * 20 Hz / (200 trials * 2 s)) ~ 0.3 Hz, the phase's ~0.3/10 rad ~ 2 deg.
    """
    t = np.arange(0, 2000, 1.0)
    rate = neo.AnalogSignal((20 + 10 * np.sin(2 * np.pi * 5 * t * 1e-3))[:, None], units="Hz", sampling_period=1 * pq.ms)
    np.random.seed(4)
    trains = [inhomogeneous_poisson_process(rate) for _ in range(200)]
    h = spikes.psth(trains, 5 * pq.ms)
    from cortical_gle.analysis.phase import sinusoid_fit
    amp, ph = sinusoid_fit(h, 5 * pq.Hz)
    assert abs(float(amp[0]) - 10) < 1.5
    assert abs(float(ph[0])) < 10


def test_pairwise_correlation_of_shared_input():
    """Two trains sharing a Poisson source with fraction c of their spikes have count correlation c.

    For Poisson counts, cov = c lambda Delta and var = lambda Delta, so rho = c (bins small enough that a
    bin rarely holds two spikes of one source does not matter here: counts, not binary). 4,000 bins:
    SE ~ (1 - c^2)/sqrt(4000) ~ 0.015.
    """
    c, lam, T = 0.3, 50 * pq.Hz, 200 * pq.s
    (shared,) = _poisson(c * lam, T, seed=5)
    p1, p2 = _poisson((1 - c) * lam, T, seed=6, n=2)
    (b_indep,) = _poisson(lam, T, seed=7)
    a, b = (neo.SpikeTrain(np.sort(np.concatenate([shared.magnitude, p.magnitude])) * pq.s, t_stop=T) for p in (p1, p2))
    rho = spikes.pairwise_correlations([a, b, b_indep], 50 * pq.ms).magnitude
    assert abs(rho[0, 1] - c) < 0.06
    assert abs(rho[0, 2]) < 0.06


def test_white_noise_spectrum_and_coherence():
    """White noise of variance s^2 at fs has the flat one-sided PSD 2 s^2 / fs; y = x + independent noise of
    equal variance has coherence 1/2 at every frequency.  Welch with 200 segments: relative SE ~ 1/sqrt(200) = 7 %
    per bin, less averaged over bins."""
    rng = np.random.default_rng(8)
    fs, n = 1000.0, 200_000
    x = rng.standard_normal(n)
    y = x + rng.standard_normal(n)
    sx = neo.AnalogSignal(x[:, None], units="mV", sampling_rate=fs * pq.Hz)
    sy = neo.AnalogSignal(y[:, None], units="mV", sampling_rate=fs * pq.Hz)
    f, psd = spectra.power_spectrum(sx, frequency_resolution=5 * pq.Hz)
    assert psd.units == pq.mV ** 2 / pq.Hz
    assert abs(float(psd.magnitude[1:-1].mean()) / (2 / fs) - 1) < 0.03
    f, coh, ph = spectra.coherence(sx, sy, frequency_resolution=5 * pq.Hz)
    assert abs(float(coh.magnitude[1:-1].mean()) - 0.5) < 0.02
    assert abs(float(ph.magnitude[1:-1].mean())) < 2


def test_broadband_transfer_function_of_a_known_filter():
    """y = x delayed by 2 samples (1 kHz) and scaled by 3: |H| = 3, phase = -360 f * 2 ms.

    Exact for a noise-free system up to Welch edge effects (2 of 200 samples per segment: <= 1 %)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(100_000)
    y = 3 * np.roll(x, 2)
    sx = neo.AnalogSignal(x[:, None], units="pA", sampling_rate=1000 * pq.Hz)
    sy = neo.AnalogSignal(y[:, None], units="Hz", sampling_rate=1000 * pq.Hz)
    f, g, ph = transfer.transfer_function(sy, sx, frequency_resolution=5 * pq.Hz)
    sel = (f.magnitude > 0) & (f.magnitude < 200)
    assert g.units == pq.Hz / pq.pA
    np.testing.assert_allclose(g.magnitude[sel, 0], 3, rtol=0.02)
    np.testing.assert_allclose(ph.magnitude[sel, 0], -360 * f.magnitude[sel] * 2e-3, atol=1.0)


def test_fit_recovers_exact_gle_response_and_bootstrap_covers_it():
    """Noise-free H of tau_m = 10 ms, tau_r = 3 ms, g0 = 2 is fitted to 1e-4 relative; with 5 % complex noise
    per trial (20 trials), the 95 % bootstrap interval contains the truth and is narrower than 30 %."""
    f = np.geomspace(1, 300, 15) * pq.Hz
    H = transfer.gle_response(f, 10 * pq.ms, 3 * pq.ms, 2.0)
    fit = transfer.fit_gle(f, np.abs(H), np.degrees(np.angle(H)) * pq.deg)
    assert abs(float(fit["tau_m"]) - 10) < 1e-3 and abs(float(fit["tau_r"]) - 3) < 1e-3 and abs(fit["g0"] - 2) < 1e-4
    rng = np.random.default_rng(10)
    trials = H * (1 + 0.05 * (rng.standard_normal((20, 15)) + 1j * rng.standard_normal((20, 15))))
    bf = transfer.bootstrap_fit(f, trials, n_boot=100, seed=0)
    for key, true in (("tau_m", 10), ("tau_r", 3)):
        lo, hi = bf[key + "_ci"].magnitude
        assert lo <= true <= hi and (hi - lo) < 0.3 * true


def test_bad_input_errors_name_the_problem():
    st = neo.SpikeTrain([] * pq.ms, t_stop=100 * pq.ms, name="cell7")
    with pytest.raises(ValueError, match="cell7.*0 spikes"):
        spikes.isi(st)
    a = neo.AnalogSignal(np.zeros((100, 1)), units="pA", sampling_rate=1000 * pq.Hz)
    b = neo.AnalogSignal(np.zeros((100, 1)), units="mV", sampling_rate=2000 * pq.Hz)
    with pytest.raises(ValueError, match="sampling rates differ"):
        transfer.transfer_function(b, a)
