"""Speech commands: the three synthesisers and their held-out voices, per-split noise, augmentation, the loader."""
import shutil

import numpy as np
import pytest
import soundfile as sf

from cortical_gle.data import speech_synth
from cortical_gle.data.speech_augment import Augment, augment_clips
from cortical_gle.data.speech_commands import (CLASS_NAMES, COMMANDS, DatasetError, load_speech_commands, log_mel,
                                               noise_files_by_split)
from cortical_gle.data.speech_synth import synthesisers_available, synthesize_speech_commands


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    if not synthesisers_available():
        pytest.skip(f"speech synthesisers not installed: {speech_synth.missing_synthesisers()} (scripts/setup.sh)")
    root = tmp_path_factory.mktemp("sc")
    counts = synthesize_speech_commands(root, n_train_speakers=2, n_val_speakers=1, n_test_speakers=1,
                                        n_test_synth_speakers=3, repetitions=1, seed=3)
    return root, counts


def _speakers(root):
    return {s.id: {"engine": s.engine, "voice": s.voice, "split": s.split} for s in speech_synth.read_speakers(root)}


def test_layout_and_held_out_voices(synth):
    """No voice (and no espeak-ng accent or variant) is in two splits; flite only in test_synth."""
    root, counts = synth
    assert counts == {"train": 40, "val": 20, "test": 20, "test_synth": 60}
    spk = _speakers(root)
    lists = {"val": "validation_list.txt", "test": "testing_list.txt", "test_synth": "testing_synth_list.txt"}
    for split, name in lists.items():      # every listed clip's speaker belongs to that split
        rels = (root / name).read_text().split()
        assert len(rels) == counts[split]
        assert {spk[r.split("/")[1].split("_nohash_")[0]]["split"] for r in rels} == {split}
    voices = {s: {v["voice"] for v in spk.values() if v["split"] == s} for s in counts}
    parts = {s: {p for v in voices[s] if "+" in v for p in v.split("+")} for s in counts}
    for a in counts:
        for b in counts:
            if a < b:
                assert not voices[a] & voices[b] and not parts[a] & parts[b], (a, b)
    engines = {s: {v["engine"] for v in spk.values() if v["split"] == s} for s in counts}
    assert engines == {"train": {"espeak-ng", "festival"}, "val": {"espeak-ng"}, "test": {"espeak-ng"},
                       "test_synth": {"flite"}}
    assert voices["test_synth"] == set(speech_synth.FLITE_VOICES)
    audio, sr = sf.read(root / (root / "testing_synth_list.txt").read_text().split()[0])
    assert sr == 16000 and audio.shape == (16000,) and np.abs(audio).max() > 0.05


@pytest.mark.skipif(not synthesisers_available(), reason="speech synthesisers not installed (scripts/setup.sh)")
def test_festival_held_out_instead(tmp_path):
    """``held_out="festival"``: festival's voices only in test_synth, flite's in training; an unknown
    synthesiser is refused by name before anything is written."""
    synthesize_speech_commands(tmp_path / "f", n_train_speakers=2, n_val_speakers=1, n_test_speakers=1,
                               n_test_synth_speakers=3, repetitions=1, seed=3, held_out="festival")
    spk = _speakers(tmp_path / "f")
    voices = {s: {v["voice"] for v in spk.values() if v["split"] == s} for s in ("train", "test_synth")}
    assert voices["test_synth"] == set(speech_synth.FESTIVAL_VOICES)
    assert {v["engine"] for v in spk.values() if v["split"] == "train"} == {"espeak-ng", "flite"}
    with pytest.raises(ValueError, match="held-out synthesiser 'mbrola' is not one of flite, festival"):
        synthesize_speech_commands(tmp_path / "m", held_out="mbrola")
    assert not (tmp_path / "m").exists()


def test_noise_files_disjoint_per_split(synth, tmp_path):
    """Each split has its own noise files, and its silence clips come from them: silencing the
    validation files (all zeros) makes every validation silence clip digital silence (-100 dB, the
    floor of ``power_to_db``) while the training silence stays noisy."""
    root, _ = synth
    files = noise_files_by_split(root, ("train", "val", "test", "test_synth"))
    names = [f.name for fs in files.values() for f in fs]
    assert len(names) == len(set(names)) == 20 and all(len(fs) == 5 for fs in files.values())
    dst = _copy(root, tmp_path)
    for f in files["val"]:
        sf.write(dst / "_background_noise_" / f.name, np.zeros(16000 * 2), 16000)
    d = load_speech_commands(dst, cache_dir=tmp_path, log=lambda m: None)
    silence = CLASS_NAMES.index("_silence_")
    assert np.all(d["x_val"][d["y_val"] == silence] <= -99.9)
    assert np.all(d["x_train"][d["y_train"] == silence].max(axis=(1, 2)) > -99)


def test_noise_split_without_listing(tmp_path):
    """The real set has no listing: last file -> test, the one before -> val, the rest -> train."""
    (tmp_path / "_background_noise_").mkdir()
    for name in ("a", "b", "c", "d"):
        (tmp_path / "_background_noise_" / f"{name}.wav").touch()
    files = noise_files_by_split(tmp_path)
    assert {s: [f.stem for f in fs] for s, fs in files.items()} == {"train": ["a", "b"], "val": ["c"], "test": ["d"]}
    (tmp_path / "_background_noise_" / "c.wav").unlink()
    (tmp_path / "_background_noise_" / "d.wav").unlink()
    with pytest.raises(DatasetError, match="2 noise file\\(s\\), need at least 3"):
        noise_files_by_split(tmp_path)


def test_missing_synthesiser_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="Debian package\\(s\\) espeak-ng, festival, flite; run scripts/setup.sh"):
        synthesize_speech_commands(tmp_path / "out")
    monkeypatch.undo()
    if shutil.which("festival"):
        monkeypatch.setattr(speech_synth, "FESTIVAL_VOICE_ROOT", tmp_path)
        (tmp_path / "english" / "kal_diphone").mkdir(parents=True)
        with pytest.raises(RuntimeError, match="festvox-kdlpc16k, festvox-us-slt-hts; run scripts/setup.sh"):
            synthesize_speech_commands(tmp_path / "out")


def test_augmentation_deterministic_per_seed(synth):
    """Copy v of clip i depends only on (seed, v, i): one worker or two give the same bits; another
    seed gives other copies; copies differ from the clean clip."""
    root, _ = synth
    clips = np.stack([sf.read(p, dtype="float32")[0] for p in sorted((root / "yes").glob("*.wav"))[:3]])
    noise = noise_files_by_split(root, ("train", "val", "test", "test_synth"))["train"]
    a = augment_clips(clips, noise, Augment(variants=2, seed=0, p=1.0), workers=1)
    b = augment_clips(clips, noise, Augment(variants=2, seed=0, p=1.0), workers=2)
    c = augment_clips(clips, noise, Augment(variants=2, seed=1, p=1.0), workers=1)
    assert a.shape == (2, 3, 16000)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-3) and not np.allclose(a[0], clips, atol=1e-3)


def test_loader_classes_splits_and_augmentation(synth, tmp_path):
    """Class counts per split; augmented copies exist for training only and leave the held-out
    splits bit-identical to a load without augmentation."""
    root, _ = synth
    d = load_speech_commands(root, cache_dir=tmp_path, log=lambda m: None)
    assert d["class_names"] == list(CLASS_NAMES) and d["splits"] == ["train", "val", "test", "test_synth"]
    assert d["x_train"].shape[1:] == (32, 32) and "x_train_aug" not in d
    # 2 speakers x 10 commands + as many unknown and silence clips as an average command class
    assert np.bincount(d["y_train"], minlength=12).tolist() == [2] * 12
    assert len(d["y_val"]) == len(d["y_test"]) == 12 and np.bincount(d["y_test_synth"]).tolist() == [3] * 12
    aug = load_speech_commands(root, cache_dir=tmp_path, augment=Augment(variants=1, p=1.0), log=lambda m: None)
    assert aug["x_train_aug"].shape == (1,) + d["x_train"].shape
    assert not np.allclose(aug["x_train_aug"][0], d["x_train"], atol=1.0)
    for s in ("train", "val", "test", "test_synth"):
        np.testing.assert_array_equal(aug[f"x_{s}"], d[f"x_{s}"])
    again = load_speech_commands(root, cache_dir=tmp_path, augment=Augment(variants=1, p=1.0), log=lambda m: None)
    np.testing.assert_array_equal(again["x_train_aug"], aug["x_train_aug"])   # from the cache


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


def test_test_sets_do_not_reach_training(synth, tmp_path):
    """Training and model selection see no test clip: relabelling every clip of both test sets
    (moving it to another word's folder) leaves the training and validation curves and the
    learning-rate schedule bit-identical (a tiny GLE network, 3 epochs, patience 1 so the
    plateau acts)."""
    from cortical_gle.runner import run_protocol

    def train(root, name):
        over = [("data.path", str(root)), ("data.cache_dir", str(tmp_path / f"cache_{name}")), ("methods", ["gle"]),
                ("data.augment", None), ("network.n_hidden", 1), ("network.n_le", 4),
                ("network.n_li", 4), ("network.steps_per_frame", 1), ("training.epochs", 3),
                ("training.batch", 16), ("training.plateau_patience", 1), ("training.lr", 0.05)]
        return run_protocol("speech-commands", out_dir=tmp_path / name, overrides=over, progress=False)["methods"]["gle"]

    a = train(synth[0], "a")
    dst = _copy(synth[0], tmp_path)
    words = sorted(p.name for p in dst.iterdir() if p.is_dir() and not p.name.startswith("_"))
    for name in ("testing_list.txt", "testing_synth_list.txt"):
        moved = []
        for rel in (dst / name).read_text().split():
            word, f = rel.split("/")
            new = f"{words[(words.index(word) + 1) % len(words)]}/moved_{f}"
            (dst / rel).rename(dst / new)
            moved.append(new)
        (dst / name).write_text("\n".join(moved) + "\n")
    b = train(dst, "b")
    assert a["test_acc"] != b["test_acc"] or a["test_synth_acc"] != b["test_synth_acc"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert a[key] == b[key], key


def test_validation_accent_fold(synth, tmp_path):
    """``val_accent``: that training accent's clips become validation and leave training, the listed
    validation voices sit out, the test splits keep their size; an accent no training voice has, or a
    folder without SPEAKERS.txt, is refused by name."""
    root, _ = synth
    spk = _speakers(root)
    accents = {v["voice"].split("+")[0] for v in spk.values() if v["engine"] == "espeak-ng" and v["split"] == "train"}
    accent = sorted(accents)[0]
    plain = load_speech_commands(root, cache_dir=tmp_path, log=lambda m: None)
    fold = load_speech_commands(root, cache_dir=tmp_path, val_accent=accent, log=lambda m: None)
    # 2 training speakers (1 espeak-ng, 1 festival) x 10 commands x 1 repetition: the espeak-ng one moves
    assert np.bincount(fold["y_train"], minlength=12).tolist() == [1] * 12
    assert np.bincount(fold["y_val"], minlength=12).tolist() == [1] * 12
    for s in ("test", "test_synth"):
        assert fold[f"x_{s}"].shape == plain[f"x_{s}"].shape
    # the fold's command clips are among the plain load's training clips, not its validation clips
    n = len(COMMANDS)
    val_cmd = fold["x_val"][fold["y_val"] < n]
    near = lambda a, b: np.abs(a[:, None] - b[None]).max(axis=(2, 3)).min(axis=1) < 1e-5  # noqa: E731
    assert near(val_cmd, plain["x_train"]).all() and not near(val_cmd, plain["x_val"]).any()
    assert not near(fold["x_train"][fold["y_train"] < n], val_cmd).any()
    with pytest.raises(DatasetError, match="no training voice has espeak-ng accent 'xx'.*" + accent):
        load_speech_commands(root, cache_dir=tmp_path, val_accent="xx", log=lambda m: None)
    dst = _copy(root, tmp_path)
    (dst / "SPEAKERS.txt").unlink()
    with pytest.raises(DatasetError, match="no SPEAKERS.txt"):
        load_speech_commands(dst, cache_dir=tmp_path, val_accent=accent, log=lambda m: None)
