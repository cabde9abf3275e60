"""The speech-commands protocol end to end on a synthesised set (what CI runs with --quick)."""
import pytest

from cortical_gle.data.speech_synth import synthesisers_available
from cortical_gle.runner import run_protocol


@pytest.mark.slow
@pytest.mark.skipif(not synthesisers_available(), reason="espeak-ng/flite/festival not installed (scripts/setup.sh)")
def test_quick_speech_protocol(tmp_path, monkeypatch):
    """Quick run, seed 0, measured (``cortical-gle run speech-commands --quick``, input_tau 0.4): GLE, kept
    epoch 19 of 20 (lowest validation loss), 75.7 % held-out voices, 44.4 % held-out synthesiser (flite);
    MLP 52.1 % and 43.8 % (chance 8.3 %). Thresholds sit ~3 binomial standard deviations below (sd 3.6
    and 4.1 points for GLE at n = 144)."""
    monkeypatch.setenv("CORTICAL_GLE_CACHE", str(tmp_path / "cache"))
    m = run_protocol("speech-commands", quick=True, out_dir=tmp_path / "run", progress=False,
                     overrides=[("data.cache_dir", str(tmp_path / "cache"))])
    assert m["synthesised"] and m["class_names"][-2:] == ["_silence_", "_unknown_"]
    gle = m["methods"]["gle"]
    assert len(gle["val_acc"]) == len(gle["test_acc"]) == len(gle["test_synth_acc"]) == 20
    assert len(gle["confusion_matrix"]) == 12 and sum(map(sum, gle["confusion_matrix"])) == m["n_test"]
    assert sum(map(sum, gle["confusion_matrix_test_synth"])) == m["n_test_synth"]
    assert gle["final_test_acc"] > 65 and gle["final_test_synth_acc"] > 32
    assert gle["kept_epoch"] == 1 + gle["val_loss"].index(min(gle["val_loss"]))   # keep: best
    assert (tmp_path / "run" / "checkpoint_gle_best.npz").is_file()
    assert m["final_test_acc"]["mlp"] > 40 and m["final_test_synth_acc"]["mlp"] > 31
    mlp = m["methods"]["mlp"]    # validation (held-out voices) reported per epoch, near its test accuracy
    assert len(mlp["val_acc"]) == len(mlp["test_acc"]) and mlp["final_val_acc"] == mlp["val_acc"][-1] > 30
    assert len(mlp["val_pred"]) == m["n_val"]
    assert (tmp_path / "run" / "confusion_matrix.png").exists()
