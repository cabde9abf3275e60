"""Google Speech Commands v2, 12-class task, from a local folder in its standard layout.

Layout: one folder per word of 1 s, 16 kHz WAVs, ``_background_noise_/``,
``validation_list.txt`` and ``testing_list.txt`` (paths relative to the root);
an optional ``testing_synth_list.txt`` (the synthesised set's held-out
synthesiser) makes a second test split, ``test_synth``.
Classes: the ten commands, ``_silence_`` (1 s cuts of the background noise)
and ``_unknown_`` (the other words, subsampled to the size of an average
command class).  Each split cuts its silence clips from its own noise files:
those listed for it in ``_background_noise_/noise_splits.txt`` (``file split``
per line), or, without that list (the real set), the last file in name order
for test, the one before for validation and the rest for training.
Features: log-Mel spectrograms, ``n_mels`` bins x ``n_frames`` frames per clip,
computed with librosa and cached to disk keyed by the settings and the file
listing; with ``augment``, also augmented copies of the training clips
(:mod:`.speech_augment`).  Nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..io import atomic_savez
from . import default_cache_dir

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
CLASS_NAMES = COMMANDS + ("_silence_", "_unknown_")
SAMPLE_RATE = 16000
NOISE_SPLITS_FILE = "noise_splits.txt"
SYNTH_TEST_LIST = "testing_synth_list.txt"


class DatasetError(ValueError):
    """The dataset folder is missing, incomplete or unreadable."""


def _check_layout(root: Path) -> list:
    if not root.is_dir():
        raise DatasetError(f"speech-commands folder {root} does not exist (pass --set data.path=DIR)")
    for name in ("validation_list.txt", "testing_list.txt"):
        if not (root / name).is_file():
            raise DatasetError(f"{root}: missing split list {name}")
    if not (root / "_background_noise_").is_dir():
        raise DatasetError(f"{root}: missing _background_noise_/ (needed for the silence class)")
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    missing = [w for w in COMMANDS if w not in words]
    if missing:
        raise DatasetError(f"{root}: no folder for the command(s) {', '.join(missing)}")
    return words


def _read_audio(path: Path, report: dict) -> np.ndarray | None:
    """Mono audio at 16 kHz (resampled if needed, counted), or ``None`` if unreadable (counted)."""
    import soundfile as sf

    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is skipped and reported
        report["skipped"].append(f"{path.name}: {type(err).__name__}: {str(err)[:80]}")
        return None
    audio = audio.mean(axis=1)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        report["skipped"].append(f"{path.name}: empty or non-finite audio")
        return None
    if sr != SAMPLE_RATE:
        import librosa
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE)
        report["resampled"] += 1
    return audio


def read_clip(path: Path, report: dict) -> np.ndarray | None:
    """A 1 s clip at 16 kHz (zero-padded or cut), or ``None`` if unreadable (counted)."""
    audio = _read_audio(path, report)
    if audio is None:
        return None
    out = np.zeros(SAMPLE_RATE, dtype=np.float32)
    out[: min(SAMPLE_RATE, audio.size)] = audio[:SAMPLE_RATE]
    return out


def log_mel(clips: np.ndarray, n_mels: int = 32, n_frames: int = 32) -> np.ndarray:
    """Log-Mel features (n_clips, n_frames, n_mels): librosa Mel filterbank, hop = 1 s / n_frames."""
    import librosa

    hop = SAMPLE_RATE // n_frames
    mel = librosa.feature.melspectrogram(y=clips, sr=SAMPLE_RATE, n_fft=2 * hop, hop_length=hop, n_mels=n_mels,
                                         center=True)
    mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    return np.ascontiguousarray(np.swapaxes(mel[..., :n_frames], -1, -2), dtype=np.float32)


def _fingerprint(root: Path, settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            st = os.stat(os.path.join(dirpath, f))
            h.update(f"{os.path.relpath(os.path.join(dirpath, f), root)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def noise_files_by_split(root: Path, splits=("train", "val", "test")) -> dict:
    """The background-noise files each split cuts its silence (and augmentation noise) from; disjoint.

    Raises
    ------
    DatasetError
        A listed file or split is unknown, or there are too few files for one per split.
    """
    folder = root / "_background_noise_"
    files = sorted(folder.glob("*.wav"))
    listing = folder / NOISE_SPLITS_FILE
    if listing.is_file():
        out = {s: [] for s in splits}
        for line in listing.read_text().splitlines():
            if not line.strip():
                continue
            name, split = line.split()
            if split not in out or not (folder / name).is_file():
                raise DatasetError(f"{listing}: line '{line}' names an unknown split (expected one of "
                                   f"{', '.join(splits)}) or a missing file")
            out[split].append(folder / name)
    else:
        if len(files) < len(splits):
            raise DatasetError(f"{folder}: {len(files)} noise file(s), need at least {len(splits)} "
                               f"(one per split: {', '.join(splits)}) so no split shares noise with another")
        out = {"train": files[: len(files) - len(splits) + 1]}
        out.update({s: [files[len(files) - len(splits) + i]] for i, s in enumerate(splits) if i > 0})
    empty = [s for s, f in out.items() if not f]
    if empty:
        raise DatasetError(f"{folder}: no noise file for split(s) {', '.join(empty)}")
    return out


def fold_speakers(root: Path, accent: str) -> set:
    """The ids of a synthesised set's training speakers that speak espeak-ng ``accent`` (``SPEAKERS.txt``).

    Raises
    ------
    DatasetError
        The folder has no ``SPEAKERS.txt`` (not a synthesised set), or no training voice has ``accent``
        (the message lists those that do).
    """
    from .speech_synth import SPEAKERS_FILE, read_speakers   # speech_synth imports this module

    try:
        speakers = read_speakers(root)
    except FileNotFoundError:
        raise DatasetError(f"{root}: no {SPEAKERS_FILE}; a validation accent needs a synthesised set") from None
    train = {s.id: s.voice.split("+")[0] for s in speakers if s.engine == "espeak-ng" and s.split == "train"}
    ids = {sid for sid, a in train.items() if a == accent}
    if not ids:
        raise DatasetError(f"{root / SPEAKERS_FILE}: no training voice has espeak-ng accent {accent!r}; "
                           f"training accents: {', '.join(sorted(set(train.values())))}")
    return ids


def load_speech_commands(path, n_mels: int = 32, n_frames: int = 32, seed: int = 0, cache_dir=None,
                         augment=None, val_accent: str | None = None, log=print) -> dict:
    """Features and labels for ``train``, ``val``, ``test`` (and ``test_synth`` if listed).

    Returns a dict with ``x_<split>`` (n, n_frames, n_mels) float32, ``y_<split>``
    (n,) int, ``splits``, ``class_names`` and ``report`` (files read, resampled,
    skipped).  With ``augment`` (:class:`.speech_augment.Augment`), also
    ``x_train_aug`` (variants, n, n_frames, n_mels): augmented copies of the
    training clips, in the order of ``x_train``.

    ``val_accent`` makes a cross-validation fold of a synthesised set: the training
    voices of that espeak-ng accent (:func:`fold_speakers`) are the ``val`` split, the
    listed validation voices sit out, and the test splits keep their voices.  The fold's
    clips were mixed with training noise, so its silence clips are cut from it too.

    Raises
    ------
    DatasetError
        Missing folder, split list, background noise or command folder; or no
        readable clip at all; a ``val_accent`` that :func:`fold_speakers` refuses.
    """
    root = Path(path).expanduser().resolve()
    words = _check_layout(root)
    settings = {"n_mels": n_mels, "n_frames": n_frames, "seed": seed, "version": 2,
                "augment": None if augment is None else augment.model_dump()}
    fold = None if val_accent is None else fold_speakers(root, val_accent)
    if fold is not None:   # only then: the caches of plain loads keep their keys
        settings["val_accent"] = val_accent
    key = _fingerprint(root, settings)
    cache = Path(cache_dir or default_cache_dir()) / f"speech_{key}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
            data["report"] = json.loads(str(data.pop("report")))
            data["splits"] = [str(s) for s in data["splits"]]
            data["class_names"] = list(CLASS_NAMES)
            return data
        except Exception as err:  # noqa: BLE001
            raise DatasetError(f"feature cache {cache} is corrupt ({type(err).__name__}); delete it") from None
    lists = {"val": "validation_list.txt", "test": "testing_list.txt"}
    if (root / SYNTH_TEST_LIST).is_file():
        lists["test_synth"] = SYNTH_TEST_LIST
    held_out = {split: set((root / name).read_text().split()) for split, name in lists.items()}
    rng = np.random.default_rng(seed)
    report = {"files": 0, "resampled": 0, "skipped": []}
    split_files = {"train": [], **{s: [] for s in lists}}
    for w in words:
        for f in sorted((root / w).glob("*.wav")):
            rel = f"{w}/{f.name}"
            split = next((s for s, names in held_out.items() if rel in names), "train")
            if fold is not None and split == "val":
                continue
            if fold is not None and split == "train" and f.name.split("_nohash_")[0] in fold:
                split = "val"
            split_files[split].append((f, COMMANDS.index(w) if w in COMMANDS else len(COMMANDS) + 1))
    noise_files = noise_files_by_split(root, tuple(split_files))
    if fold is not None:
        noise_files["val"] = noise_files["train"]
    out = {}
    for split, files in split_files.items():
        noise = [c for c in (read_clip_long(p, report) for p in noise_files[split]) if c is not None]
        if not noise:
            raise DatasetError(f"{root}/_background_noise_: no readable WAV file for the {split} split")
        labels = np.array([lab for _, lab in files], dtype=np.int64)
        known = labels[labels < len(COMMANDS)]
        n_avg = max(1, len(known) // len(COMMANDS))
        unknown_idx = np.flatnonzero(labels == len(COMMANDS) + 1)
        keep_unknown = set(rng.choice(unknown_idx, size=min(n_avg, unknown_idx.size), replace=False).tolist())
        clips, ys = [], []
        for i, (f, lab) in enumerate(files):
            if lab == len(COMMANDS) + 1 and i not in keep_unknown:
                continue
            report["files"] += 1
            clip = read_clip(f, report)
            if clip is not None:
                clips.append(clip)
                ys.append(lab)
        for _ in range(n_avg):  # silence: random 1 s cuts of this split's background noise, random level
            src = noise[int(rng.integers(len(noise)))]
            s0 = int(rng.integers(0, max(1, src.size - SAMPLE_RATE)))
            clips.append(src[s0: s0 + SAMPLE_RATE] * rng.uniform(0.0, 1.0))
            ys.append(len(COMMANDS))
        if not clips:
            raise DatasetError(f"{root}: no readable clip in the {split} split")
        out[f"x_{split}"] = log_mel(np.stack(clips), n_mels, n_frames)
        out[f"y_{split}"] = np.array(ys, dtype=np.int64)
        if split == "train" and augment is not None:
            from .speech_augment import augment_clips

            log(f"speech-commands: {augment.variants} augmented cop(ies) of {len(clips)} training clips ...")
            aug = augment_clips(np.stack(clips), noise_files["train"], augment)
            out["x_train_aug"] = log_mel(aug.reshape(-1, SAMPLE_RATE), n_mels, n_frames).reshape(
                len(aug), len(clips), n_frames, n_mels)
    out["splits"] = np.array(list(split_files))
    if report["resampled"]:
        log(f"speech-commands: resampled {report['resampled']} file(s) to {SAMPLE_RATE} Hz")
    if report["skipped"]:
        log(f"speech-commands: skipped {len(report['skipped'])} unreadable file(s): "
            + "; ".join(report["skipped"][:5]) + (" ..." if len(report["skipped"]) > 5 else ""))
    atomic_savez(cache, {**out, "report": np.asarray(json.dumps(report))})
    out["splits"] = list(split_files)
    out["report"] = report
    out["class_names"] = list(CLASS_NAMES)
    return out


def read_clip_long(path: Path, report: dict) -> np.ndarray | None:
    """A whole background-noise file at 16 kHz, or ``None`` if unreadable or shorter than 1 s."""
    audio = _read_audio(path, report)
    return audio if audio is not None and audio.size > SAMPLE_RATE else None
