"""A small spoken-commands set in the Google Speech Commands v2 layout, synthesised with espeak-ng.

For tests and demos (nothing is downloaded).  Speakers are espeak-ng voices
with voice variants and their own base pitch and speed; every utterance gets
jittered pitch, speed and amplitude, a random position in its 1 s clip and
background noise at one of several signal-to-noise ratios.  Whole speakers are
held out for ``validation_list.txt`` and ``testing_list.txt``, as in the real set.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
OTHER_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "zero", "marvin")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _background_noises(rng, seconds=30):
    n = SAMPLE_RATE * seconds
    white = rng.standard_normal(n)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    pink = np.fft.irfft(spec / np.sqrt(np.maximum(f, 20.0)), n)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(4001) / 4001, mode="same")
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 6)) + 0.3 * white
    tap = np.convolve(white, np.ones(8) / 8, mode="same") * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    out = {}
    for name, x in (("white_noise", white), ("pink_noise", pink), ("brown_noise", brown), ("hum", hum),
                    ("running_tap", tap)):
        out[name] = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    return out


def _speak(text, voice, pitch, speed, amplitude) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    res = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
                          "--stdout", text], capture_output=True, check=True, timeout=30)
    audio, sr = sf.read(io.BytesIO(res.stdout), dtype="float32")
    audio = resample_poly(audio, SAMPLE_RATE, sr).astype(np.float32) if sr != SAMPLE_RATE else audio
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.max(np.abs(audio)))
    return audio[loud[0]: loud[-1] + 1] if loud.size else audio


def synthesize_speech_commands(out_dir, n_train_speakers: int = 40, n_val_speakers: int = 10,
                               n_test_speakers: int = 10, repetitions: int = 2, snr_db=(30.0, 20.0, 10.0),
                               seed: int = 0, workers: int = 2, words=COMMANDS + OTHER_WORDS) -> dict:
    """Write a speech-commands folder to ``out_dir``; returns counts per split.

    Raises
    ------
    RuntimeError
        If ``espeak-ng`` is not installed (``apt-get install espeak-ng``).
    """
    import soundfile as sf

    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed; run scripts/setup.sh or 'apt-get install espeak-ng'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    noises = _background_noises(rng)
    (out / "_background_noise_").mkdir(exist_ok=True)
    for name, x in noises.items():
        sf.write(out / "_background_noise_" / f"{name}.wav", x, SAMPLE_RATE, subtype="PCM_16")
    n_spk = n_train_speakers + n_val_speakers + n_test_speakers
    combos = [(v, var) for v in VOICES for var in VARIANTS]
    if n_spk > len(combos):
        raise ValueError(f"at most {len(combos)} distinct speakers, asked for {n_spk}")
    picks = rng.choice(len(combos), size=n_spk, replace=False)
    speakers = []
    for i, k in enumerate(picks):
        voice, variant = combos[k]
        sid = hashlib.sha1(f"{seed}-{voice}-{variant}".encode()).hexdigest()[:8]
        speakers.append({"id": sid, "voice": f"{voice}+{variant}", "pitch": int(rng.integers(25, 75)),
                         "speed": int(rng.integers(130, 200)),
                         "split": "train" if i < n_train_speakers else
                         ("val" if i < n_train_speakers + n_val_speakers else "test")})
    jobs = []
    for spk in speakers:
        for word in words:
            for rep in range(repetitions):
                r = np.random.default_rng([seed, int(spk["id"], 16), zlib.crc32(word.encode()), rep])
                jobs.append((spk, word, rep, r))
    noise_list = list(noises.values())

    def make(job):
        spk, word, rep, r = job
        audio = _speak(word, spk["voice"], int(np.clip(spk["pitch"] + r.integers(-10, 11), 0, 99)),
                       int(spk["speed"] * r.uniform(0.85, 1.15)), int(r.integers(80, 180)))
        clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
        if len(audio) > SAMPLE_RATE:
            start = (len(audio) - SAMPLE_RATE) // 2
            audio = audio[start: start + SAMPLE_RATE]
        offset = int(r.integers(0, SAMPLE_RATE - len(audio) + 1))
        clip[offset: offset + len(audio)] = audio * r.uniform(0.3, 0.9) / max(1e-6, np.max(np.abs(audio)))
        noise = noise_list[int(r.integers(len(noise_list)))]
        s0 = int(r.integers(0, len(noise) - SAMPLE_RATE))
        seg = noise[s0: s0 + SAMPLE_RATE]
        snr = float(r.choice(snr_db))
        p_sig = np.mean(audio ** 2) * (np.max(np.abs(clip)) / max(1e-6, np.max(np.abs(audio)))) ** 2
        seg = seg * np.sqrt(p_sig / max(1e-12, np.mean(seg ** 2)) / 10 ** (snr / 10))
        clip = np.clip(clip + seg, -1, 1)
        rel = f"{word}/{spk['id']}_nohash_{rep}.wav"
        (out / word).mkdir(exist_ok=True)
        sf.write(out / rel, clip, SAMPLE_RATE, subtype="PCM_16")
        return spk["split"], rel

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(make, jobs))
    lists = {"val": [], "test": []}
    counts = {"train": 0, "val": 0, "test": 0}
    for split, rel in results:
        counts[split] += 1
        if split in lists:
            lists[split].append(rel)
    (out / "validation_list.txt").write_text("\n".join(sorted(lists["val"])) + "\n")
    (out / "testing_list.txt").write_text("\n".join(sorted(lists["test"])) + "\n")
    (out / "SPEAKERS.txt").write_text("".join(f"{s['id']} {s['voice']} pitch={s['pitch']} speed={s['speed']} "
                                              f"{s['split']}\n" for s in speakers))
    return counts
