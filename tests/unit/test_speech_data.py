"""Speech commands: the espeak-ng synthesiser, the loader's layout checks, bad files, Mel features."""
import shutil

import numpy as np
import pytest
import soundfile as sf

from cortical_gle.data.speech_commands import CLASS_NAMES, DatasetError, load_speech_commands, log_mel
from cortical_gle.data.speech_synth import espeak_available, synthesize_speech_commands

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    if not espeak_available():
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("sc")
    counts = synthesize_speech_commands(root, n_train_speakers=3, n_val_speakers=1, n_test_speakers=1,
                                        repetitions=1, seed=3)
    return root, counts


def test_layout_and_held_out_speakers(synth):
    root, counts = synth
    assert counts == {"train": 60, "val": 20, "test": 20}
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    speaker = lambda rel: rel.split("/")[1].split("_nohash_")[0]  # noqa: E731
    assert len({speaker(r) for r in val}) == 1 and len({speaker(r) for r in test}) == 1
    assert not ({speaker(r) for r in val} & {speaker(r) for r in test})
    audio, sr = sf.read(root / val[0])
    assert sr == 16000 and audio.shape == (16000,) and np.abs(audio).max() > 0.05
    assert len(list((root / "_background_noise_").glob("*.wav"))) >= 3


def test_loader_classes_and_splits(synth, tmp_path):
    root, _ = synth
    d = load_speech_commands(root, cache_dir=tmp_path, log=lambda m: None)
    assert d["class_names"] == list(CLASS_NAMES)
    assert d["x_train"].shape[1:] == (32, 32)
    # 3 speakers x 10 commands + as many unknown and silence clips as an average command class
    assert np.bincount(d["y_train"], minlength=12).tolist() == [3] * 12
    assert len(d["y_val"]) == len(d["y_test"]) == 12
    again = load_speech_commands(root, cache_dir=tmp_path, log=lambda m: None)  # from the cache
    np.testing.assert_array_equal(again["x_train"], d["x_train"])


def _copy(root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst


@pytest.mark.parametrize("remove,message", [
    ("validation_list.txt", "missing split list validation_list.txt"),
    ("_background_noise_", "missing _background_noise_"),
    ("left", "no folder for the command\\(s\\) left"),
])
def test_incomplete_folder_is_named(synth, tmp_path, remove, message):
    dst = _copy(synth[0], tmp_path)
    target = dst / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetError, match=message):
        load_speech_commands(dst, cache_dir=tmp_path, log=lambda m: None)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_speech_commands(tmp_path / "nope", cache_dir=tmp_path)


def test_other_rate_is_resampled_and_broken_file_skipped(synth, tmp_path):
    dst = _copy(synth[0], tmp_path)
    wav = sorted((dst / "yes").glob("*.wav"))
    audio, _ = sf.read(wav[0])
    import librosa
    sf.write(wav[0], librosa.resample(audio, orig_sr=16000, target_sr=8000), 8000)
    wav[1].write_bytes(wav[1].read_bytes()[:30])      # truncated header
    messages = []
    d = load_speech_commands(dst, cache_dir=tmp_path, log=messages.append)
    assert d["report"]["resampled"] == 1
    assert len(d["report"]["skipped"]) == 1 and wav[1].name in d["report"]["skipped"][0]
    assert any("resampled 1 file" in m for m in messages) and any("skipped 1 unreadable" in m for m in messages)


def test_corrupt_feature_cache(synth, tmp_path):
    load_speech_commands(synth[0], cache_dir=tmp_path, log=lambda m: None)
    cache = next(tmp_path.glob("speech_*.npz"))
    cache.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="feature cache .* is corrupt"):
        load_speech_commands(synth[0], cache_dir=tmp_path, log=lambda m: None)


def test_mel_peak_follows_a_pure_tone():
    """A 1 kHz tone peaks in the Mel band whose centre is nearest 1 kHz; 4 kHz in a higher one."""
    import librosa

    t = np.arange(16000) / 16000
    centres = librosa.mel_frequencies(n_mels=32 + 2, fmax=8000)[1:-1]
    for f in (1000.0, 4000.0):
        feat = log_mel(np.sin(2 * np.pi * f * t)[None].astype(np.float32))
        assert feat.shape == (1, 32, 32)
        assert int(np.argmax(feat[0, 16])) == int(np.argmin(np.abs(centres - f)))
