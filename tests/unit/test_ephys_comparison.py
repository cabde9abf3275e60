"""ephys-comparison on a real NEST recording (written to NIX, read back through Neo) and on bad input."""
import json

import neo
import numpy as np
import pytest
import quantities as pq

from cortical_gle import theory
from cortical_gle.analysis.neo_io import read_run, write_block
from cortical_gle.analysis.phase import sinusoid_fit
from cortical_gle.protocol import ProtocolError
from cortical_gle.runner import run_protocol

SMALL = [("generate.cells", {"aeif_cond_exp": [850, 120, 150]}), ("generate.frequencies", [1, 2, 5, 20]),
         ("generate.trials", 6), ("generate.duration", "2000 ms"), ("fit.n_boot", 20)]


@pytest.mark.nest
def test_quick_run_on_nest_aeif(tmp_path):
    """NEST's adapting aeif_cond_exp (b = 80.5 pA, tau_w = 144 ms) leads the sinusoid at low frequency.

    Checks, each against something the pipeline did not produce itself:
    - the NIX file holds what was injected: lock-in amplitude of I_inj at f is I_1 = 120 pA and its mean
      I_0 = 850 pA.  The OU noise (sigma 150 pA, tau 5 ms, one-sided PSD 4 sigma^2 tau at low f) adds
      sqrt(4 sigma^2 tau / T) = 15 pA of spread per 2 s sweep to the amplitude and ~sigma sqrt(2 tau/T) = 11 pA
      to the mean; averaged over the 24 sweeps: 3 pA and 2 pA, so 10 pA is over 3 standard errors;
    - spike-frequency adaptation gives a phase lead at 1-2 Hz (Benda & Herz 2003, Neural Comput 15:2523):
      positive, more than 3 standard errors;
    - the fitted taus, put into the closed form atan(w tau_r) - atan(w tau_m) (cortical_gle.theory, not the
      fit code), are within 5 deg of the measured trial-mean phase at every frequency of the reported range.
    """
    out = tmp_path / "ec"
    m = run_protocol("ephys-comparison", out_dir=out, quick=True, overrides=SMALL, progress=False)
    block = read_run(out / "nest_recording.nix")
    amps, means = [], []
    for seg in block.segments:
        I = [s for s in seg.analogsignals if s.name == "I_inj"][0]
        amps.append(float(sinusoid_fit(I, seg.annotations["stimulus_frequency"] * pq.Hz)[0][0]))
        means.append(float(I.magnitude.mean()))
    assert len(amps) == 24 and abs(np.mean(amps) - 120) < 10 and abs(np.mean(means) - 850) < 10
    cell = m["cells"]["aeif_cond_exp"]
    rec, fit = cell["recording"], cell["fit"]
    assert rec["phase_deg"][0] > 3 * rec["phase_sem_deg"][0] > 0
    assert fit["fitted"] and fit["range_hz"][0] == 1.0
    f = np.asarray(rec["frequencies_hz"])
    inside = f <= fit["range_hz"][1]
    assert inside.sum() >= 3
    th = theory.phase_advance(f[inside] * pq.Hz, fit["tau_m_ms"] * pq.ms, fit["tau_r_ms"] * pq.ms).magnitude
    assert np.all(np.abs(th - np.asarray(rec["phase_deg"])[inside]) <= 5.0)
    lo, hi = fit["tau_m_ci_ms"]
    assert lo <= fit["tau_m_ms"] <= hi
    assert (out / "ephys_comparison.png").stat().st_size > 10_000
    assert json.loads((out / "metrics.json").read_text())["table"][0]["cell"] == "aeif_cond_exp"


def _block(current_units="pA", v_rate=10_000, spikes=(100.0, 300.0, 600.0), with_spikes=True, name="I_inj"):
    t = np.arange(10_000) * 0.1
    seg = neo.Segment(name="sweep 0", cell="c1", stimulus_frequency=5.0, trial=0)
    seg.analogsignals.append(neo.AnalogSignal((100 + 10 * np.sin(2 * np.pi * 5e-3 * t))[:, None], units=current_units,
                                              sampling_rate=10_000 * pq.Hz, name=name))
    seg.analogsignals.append(neo.AnalogSignal(np.full((10_000 * v_rate // 10_000, 1), -70.0), units="mV",
                                              sampling_rate=v_rate * pq.Hz, name="V_m"))
    if with_spikes:
        seg.spiketrains.append(neo.SpikeTrain(list(spikes) * pq.ms, t_stop=1000 * pq.ms, name="spikes"))
    b = neo.Block(name="rec")
    b.segments.append(seg)
    return b


@pytest.mark.parametrize("block, message", [
    (dict(name="I_stim"), r"no channel named 'I_inj' in segment 'sweep 0'; it has 'I_stim', 'V_m', 'spikes'"),
    (dict(current_units="mV"), r"channel 'I_inj' of segment 'sweep 0' has units mV, expected a current"),
    (dict(spikes=()), r"segment 'sweep 0' has 0 spike\(s\)"),
    (dict(with_spikes=False, v_rate=20_000), r"'V_m' is sampled at 20000.0 Hz, 'I_inj' at 10000.0 Hz"),
])
def test_bad_recordings_are_named_and_leave_no_results(tmp_path, block, message):
    path = write_block(_block(**block), tmp_path / "rec.nix")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        run_protocol("ephys-comparison", out_dir=out, overrides=[("data.path", str(path))], progress=False)
    assert not (out / "metrics.json").exists() and not list(out.glob("*.png"))


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "rec.nix"
    bad.write_bytes(b"\x00not a nix file")
    with pytest.raises(ValueError, match="rec.nix: not a readable NIX file"):
        run_protocol("ephys-comparison", out_dir=tmp_path / "o", overrides=[("data.path", str(bad))], progress=False)
    with pytest.raises(FileNotFoundError, match="nothere.abf"):
        run_protocol("ephys-comparison", out_dir=tmp_path / "o2", overrides=[("data.path", str(tmp_path / "nothere.abf"))],
                     progress=False)
    with pytest.raises(ProtocolError, match="generate.trials"):
        run_protocol("ephys-comparison", out_dir=tmp_path / "o3", overrides=[("generate.trials", 1)], progress=False)
