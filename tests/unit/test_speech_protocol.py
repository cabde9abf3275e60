"""The speech-commands protocol end to end on a synthesised set (what CI runs with --quick)."""
import pytest

from cortical_gle.data.speech_synth import espeak_available
from cortical_gle.runner import run_protocol


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed (scripts/setup.sh)")
def test_quick_speech_protocol(tmp_path, monkeypatch):
    monkeypatch.setenv("CORTICAL_GLE_CACHE", str(tmp_path / "cache"))
    m = run_protocol("speech-commands", quick=True, out_dir=tmp_path / "run", progress=False,
                     overrides=[("data.cache_dir", str(tmp_path / "cache"))])
    assert m["synthesised"] and m["class_names"][-2:] == ["_silence_", "_unknown_"]
    gle = m["methods"]["gle"]
    assert len(gle["val_acc"]) == len(gle["test_acc"]) == 20
    assert len(gle["confusion_matrix"]) == 12 and sum(map(sum, gle["confusion_matrix"])) == m["n_test"]
    # well above chance (8.3 %) on held-out speakers after 20 short epochs
    assert m["final_test_acc"]["mlp"] > 40 and max(gle["test_acc"]) > 40 and gle["final_test_acc"] > 25
    assert (tmp_path / "run" / "confusion_matrix.png").exists()
