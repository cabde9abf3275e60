"""A spoken-commands set in the Google Speech Commands v2 layout, synthesised by three offline engines.

For tests and demos (nothing is downloaded).  Three Debian synthesisers of
different kinds speak the words:

- ``espeak-ng`` (formant synthesis): 7 English accents x 12 voice variants;
- ``festival`` (diphone concatenation and HTS): ``kal_diphone``, ``ked_diphone``
  and ``cmu_us_slt_arctic_hts``;
- ``flite`` (statistical parametric, CMU clustergen): voices ``awb`` and ``rms``
  (flite's ``kal``/``slt`` are left out: they are festival's kal and slt speakers).

Whole voices are held out (no voice is in two splits): validation and the
held-out-voice test set (``testing_list.txt``) each get an espeak-ng accent and
two variants that training never hears; the held-out-synthesiser test set
(``testing_synth_list.txt``, an extra list next to the standard two) is flite,
whose voices and synthesis method training never hears.  Training speakers are
spread evenly over espeak-ng and festival: training needs the synthesiser with
the most distinct methods (diphones cut from recordings and HTS), and a model
trained on espeak-ng and flite reached only 42 % on festival's voices (MLP, no
augmentation, 60 training speakers) against 61 % the other way round (README).  A speaker
is a voice with its own base pitch and speed; every utterance gets jittered
pitch, speed and amplitude, a random position in its 1 s clip and background
noise at one of several signal-to-noise ratios.  Each split has its own
background-noise files (listed in ``_background_noise_/noise_splits.txt``):
silence clips and mixed-in noise of different splits never share a recording.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .speech_commands import COMMANDS, NOISE_SPLITS_FILE, SAMPLE_RATE, SYNTH_TEST_LIST

OTHER_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "zero", "marvin")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
FLITE_VOICES = ("awb", "rms")
FESTIVAL_VOICES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                   "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")
ENGINES = ("espeak-ng", "festival", "flite")
HELD_OUT_CHOICES = ("flite", "festival")   # the default first; espeak-ng always trains (it has the most voices)
SPLITS = ("train", "val", "test", "test_synth")


@dataclass(frozen=True)
class Speaker:
    id: str
    engine: str
    voice: str
    pitch: float      # espeak-ng: pitch 0-99; flite/festival: target mean F0 in Hz (0: the voice's own)
    speed: float      # espeak-ng: words per minute; flite/festival: duration stretch
    split: str


SPEAKERS_FILE = "SPEAKERS.txt"   # one speaker per line: id engine voice pitch=P speed=S split


def read_speakers(root) -> list[Speaker]:
    """The speakers a synthesised folder lists in ``SPEAKERS.txt`` (written by :func:`synthesize_speech_commands`).

    Raises
    ------
    FileNotFoundError
        ``root`` has no ``SPEAKERS.txt`` (it is not a synthesised set).
    """
    out = []
    for line in (Path(root) / SPEAKERS_FILE).read_text().splitlines():
        if line.strip():
            sid, engine, voice, pitch, speed, split = line.split()
            out.append(Speaker(sid, engine, voice, float(pitch.split("=")[1]), float(speed.split("=")[1]), split))
    return out


def missing_synthesisers(engines=ENGINES) -> list[str]:
    """Debian packages that ``engines`` need and that are not installed (empty if all are)."""
    missing = []
    for engine in engines:
        if engine == "festival":
            if shutil.which("festival") is None:
                missing.append("festival")
            missing += [pkg for voice, pkg in FESTIVAL_VOICES.items()
                        if not any(FESTIVAL_VOICE_ROOT.glob(f"*/{voice}"))]
        elif shutil.which(engine) is None:
            missing.append(engine)
    return missing


def synthesisers_available() -> bool:
    return not missing_synthesisers()


def _background_noises(rng, seconds=30):
    """Five noise recordings (white, pink, brown, mains hum, running tap), each a fresh random draw."""
    n = SAMPLE_RATE * seconds
    white = rng.standard_normal(n)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    pink = np.fft.irfft(spec / np.sqrt(np.maximum(f, 20.0)), n)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(4001) / 4001, mode="same")
    t = np.arange(n) / SAMPLE_RATE
    mains = float(rng.choice([50.0, 60.0]))
    hum = sum(np.sin(2 * np.pi * mains * k * t) / k for k in range(1, 6)) + 0.3 * rng.standard_normal(n)
    tap = (np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
           * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)))
    out = {}
    for name, x in (("white_noise", white), ("pink_noise", pink), ("brown_noise", brown), ("hum", hum),
                    ("running_tap", tap)):
        out[name] = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    return out


def _voices(rng, held_out: str = "flite") -> dict:
    """The voices of each split: whole espeak-ng accents and variants held out for val and test,
    ``held_out``'s voices for test_synth, the other synthesiser's voices in training."""
    accents = [ESPEAK_ACCENTS[i] for i in rng.permutation(len(ESPEAK_ACCENTS))]
    variants = [ESPEAK_VARIANTS[i] for i in rng.permutation(len(ESPEAK_VARIANTS))]
    espeak = lambda acc, var: [("espeak-ng", f"{a}+{v}") for a in acc for v in var]  # noqa: E731
    other = {"flite": "festival", "festival": "flite"}[held_out]
    own = {"flite": list(FLITE_VOICES), "festival": list(FESTIVAL_VOICES)}
    return {"train": espeak(accents[2:], variants[4:]) + [(other, v) for v in own[other]],
            "val": espeak(accents[:1], variants[:2]), "test": espeak(accents[1:2], variants[2:4]),
            "test_synth": [(held_out, v) for v in own[held_out]]}


def _speakers(rng, counts: dict, seed: int, held_out: str = "flite") -> list[Speaker]:
    """``counts[split]`` speakers per split: spread evenly over the split's engines, then its voices."""
    out = []
    for split, voices in _voices(rng, held_out).items():
        engines = sorted({e for e, _ in voices})
        mine = {e: [voices[i][1] for i in rng.permutation(len(voices)) if voices[i][0] == e] for e in engines}
        for k in range(counts[split]):
            engine = engines[k % len(engines)]
            voice = mine[engine][(k // len(engines)) % len(mine[engine])]
            if engine == "espeak-ng":
                pitch, speed = float(rng.integers(25, 75)), float(rng.integers(130, 200))
            else:   # festival's HTS voice keeps its own F0 (it has no target-F0 setting)
                pitch = 0.0 if voice.endswith("_hts") else float(rng.uniform(85, 150))
                speed = float(rng.uniform(0.85, 1.2))
            sid = hashlib.sha1(f"{seed}-{split}-{k}-{engine}-{voice}".encode()).hexdigest()[:8]
            out.append(Speaker(sid, engine, voice, pitch, speed, split))
    return out


def _trim(audio: np.ndarray, sr: int) -> np.ndarray:
    from scipy.signal import resample_poly

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = np.gcd(SAMPLE_RATE, sr)
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(1e-9, np.max(np.abs(audio))))
    return audio[loud[0]: loud[-1] + 1] if loud.size else audio


def _run_wav(cmd: list) -> np.ndarray:
    import soundfile as sf

    res = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    audio, sr = sf.read(io.BytesIO(res.stdout), dtype="float32")
    return _trim(audio, sr)


def _speak_espeak(word, spk: Speaker, r) -> np.ndarray:
    pitch = int(np.clip(spk.pitch + r.integers(-10, 11), 0, 99))
    return _run_wav(["espeak-ng", "-v", spk.voice, "-p", str(pitch), "-s", str(int(spk.speed * r.uniform(0.85, 1.15))),
                     "-a", str(int(r.integers(80, 180))), "--stdout", word])


def _speak_flite(word, spk: Speaker, r) -> np.ndarray:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "w.wav")
        subprocess.run(["flite", "-voice", spk.voice, "--setf", f"int_f0_target_mean={spk.pitch * r.uniform(0.9, 1.1):.1f}",
                        "--setf", f"duration_stretch={spk.speed * r.uniform(0.9, 1.1):.3f}", "-t", word, "-o", wav],
                       capture_output=True, check=True, timeout=60)
        audio, sr = sf.read(wav, dtype="float32")
    return _trim(audio, sr)


def _speak_festival(jobs: list) -> list:
    """All festival utterances of ``jobs`` (word, speaker, rng) in one festival process per voice."""
    import soundfile as sf

    out = [None] * len(jobs)
    with tempfile.TemporaryDirectory() as tmp:
        for voice in FESTIVAL_VOICES:
            lines = [f"(voice_{voice})"]
            mine = [i for i, (_, spk, _) in enumerate(jobs) if spk.voice == voice]
            for i in mine:
                word, spk, r = jobs[i]
                lines.append(f"(Parameter.set 'Duration_Stretch {spk.speed * r.uniform(0.9, 1.1):.3f})")
                if spk.pitch > 0:
                    lines.append(f"(set! int_lr_params '((target_f0_mean {spk.pitch * r.uniform(0.9, 1.1):.1f}) "
                                 "(target_f0_std 14) (model_f0_mean 170) (model_f0_std 34)))")
                lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{word}")) "{tmp}/{i}.wav" \'riff)')
            if mine:
                script = Path(tmp) / f"{voice}.scm"
                script.write_text("\n".join(lines) + "\n")
                subprocess.run(["festival", "-b", str(script)], capture_output=True, check=True, timeout=1200)
                for i in mine:
                    audio, sr = sf.read(f"{tmp}/{i}.wav", dtype="float32")
                    out[i] = _trim(audio, sr)
    return out


def synthesize_speech_commands(out_dir, n_train_speakers: int = 60, n_val_speakers: int = 12,
                               n_test_speakers: int = 12, n_test_synth_speakers: int = 12, repetitions: int = 2,
                               snr_db=(30.0, 20.0, 10.0), seed: int = 0, workers: int = 2,
                               words=COMMANDS + OTHER_WORDS, held_out: str = "flite") -> dict:
    """Write a speech-commands folder to ``out_dir``; returns clip counts per split.

    ``held_out`` is the synthesiser of the ``test_synth`` split (``"flite"`` or
    ``"festival"``); the other one trains next to espeak-ng.

    Raises
    ------
    RuntimeError
        If a synthesiser or festival voice is not installed; the message names
        the Debian packages to install.
    """
    import soundfile as sf

    if held_out not in HELD_OUT_CHOICES:
        raise ValueError(f"held-out synthesiser {held_out!r} is not one of {', '.join(HELD_OUT_CHOICES)}")
    missing = missing_synthesisers()
    if missing:
        raise RuntimeError(f"speech synthesiser(s) not installed: Debian package(s) {', '.join(missing)}; "
                           f"run scripts/setup.sh or 'apt-get install {' '.join(missing)}'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (out / "_background_noise_").mkdir(exist_ok=True)
    noises, noise_lines = {}, []
    for split in SPLITS:   # each split its own recordings: no noise sample is in two splits
        noises[split] = []
        for name, x in _background_noises(np.random.default_rng([seed, SPLITS.index(split), 7])).items():
            sf.write(out / "_background_noise_" / f"{name}_{split}.wav", x, SAMPLE_RATE, subtype="PCM_16")
            noise_lines.append(f"{name}_{split}.wav {split}\n")
            noises[split].append(x)
    (out / "_background_noise_" / NOISE_SPLITS_FILE).write_text("".join(noise_lines))
    speakers = _speakers(rng, {"train": n_train_speakers, "val": n_val_speakers, "test": n_test_speakers,
                               "test_synth": n_test_synth_speakers}, seed, held_out)
    jobs = [(word, spk, np.random.default_rng([seed, int(spk.id, 16), zlib.crc32(word.encode()), rep]), rep)
            for spk in speakers for word in words for rep in range(repetitions)]
    speak = {"espeak-ng": _speak_espeak, "flite": _speak_flite}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        audio = list(pool.map(lambda j: speak[j[1].engine](*j[:3]) if j[1].engine in speak else None, jobs))
    fest = [i for i, j in enumerate(jobs) if j[1].engine == "festival"]
    for i, a in zip(fest, _speak_festival([jobs[i][:3] for i in fest])):
        audio[i] = a

    def place(job, speech):
        word, spk, r, rep = job
        clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
        if len(speech) > SAMPLE_RATE:
            start = (len(speech) - SAMPLE_RATE) // 2
            speech = speech[start: start + SAMPLE_RATE]
        offset = int(r.integers(0, SAMPLE_RATE - len(speech) + 1))
        clip[offset: offset + len(speech)] = speech * r.uniform(0.3, 0.9) / max(1e-6, np.max(np.abs(speech)))
        noise = noises[spk.split][int(r.integers(len(noises[spk.split])))]
        s0 = int(r.integers(0, len(noise) - SAMPLE_RATE))
        seg = noise[s0: s0 + SAMPLE_RATE]
        snr = float(r.choice(snr_db))
        p_sig = np.mean(speech ** 2) * (np.max(np.abs(clip)) / max(1e-6, np.max(np.abs(speech)))) ** 2
        seg = seg * np.sqrt(p_sig / max(1e-12, np.mean(seg ** 2)) / 10 ** (snr / 10))
        rel = f"{word}/{spk.id}_nohash_{rep}.wav"
        (out / word).mkdir(exist_ok=True)
        sf.write(out / rel, np.clip(clip + seg, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        return spk.split, rel

    lists = {s: [] for s in SPLITS}
    for job, speech in zip(jobs, audio):
        split, rel = place(job, speech)
        lists[split].append(rel)
    for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt"), ("test_synth", SYNTH_TEST_LIST)):
        (out / name).write_text("\n".join(sorted(lists[split])) + "\n")
    (out / SPEAKERS_FILE).write_text("".join(f"{s.id} {s.engine} {s.voice} pitch={s.pitch:g} speed={s.speed:g} "
                                              f"{s.split}\n" for s in speakers))
    return {s: len(v) for s, v in lists.items()}
