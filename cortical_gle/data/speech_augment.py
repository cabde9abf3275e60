"""Augmented copies of speech clips with audiomentations, for training only.

Each copy passes the clip through the perturbations speech recognisers are
trained with, each applied with probability ``p``:

- speed perturbation (Ko et al., Interspeech 2015): ``TimeStretch``;
- pitch and vocal-tract-length-like perturbation (Jaitly & Hinton, ICML 2013
  workshop, VTLP): ``PitchShift``, which moves the spectral envelope with the pitch;
- a random channel: ``SevenBandParametricEQ`` and ``Gain``;
- room reverberation (Ko et al., ICASSP 2017): ``RoomSimulator`` (pyroomacoustics
  image-source rooms);
- background noise from the training split's noise files only: ``AddBackgroundNoise``;
- SpecAugment-style masking (Park et al., Interspeech 2019) in the waveform
  domain: ``TimeMask`` (time mask) and ``BandStopFilter`` (frequency mask).

Copy ``v`` of clip ``i`` is a pure function of ``(seed, v, i)``: audiomentations
draws from the global ``random`` and ``numpy.random`` generators, which are
seeded per clip, so the result does not depend on worker scheduling.
"""
from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .speech_commands import SAMPLE_RATE


class Augment(BaseModel):
    """How many augmented copies of each training clip, their seed and the perturbation strengths."""

    model_config = ConfigDict(extra="forbid")
    variants: int = Field(3, ge=1, description="augmented copies per training clip (plus the clean one)")
    seed: int = 0
    p: float = Field(0.5, ge=0, le=1, description="probability of each perturbation")
    speed: tuple[float, float] = (0.85, 1.15)
    semitones: tuple[float, float] = (-3.0, 3.0)
    noise_snr_db: tuple[float, float] = (5.0, 30.0)


def _pipeline(aug: Augment, noise_files: list):
    import audiomentations as am

    return am.Compose([
        am.TimeStretch(min_rate=aug.speed[0], max_rate=aug.speed[1], leave_length_unchanged=True, p=aug.p),
        am.PitchShift(min_semitones=aug.semitones[0], max_semitones=aug.semitones[1], p=aug.p),
        am.SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=aug.p),
        am.RoomSimulator(use_ray_tracing=False, max_order=3, leave_length_unchanged=True, p=aug.p),
        am.AddBackgroundNoise(sounds_path=[str(f) for f in noise_files], min_snr_db=aug.noise_snr_db[0],
                              max_snr_db=aug.noise_snr_db[1], p=aug.p),
        am.Gain(min_gain_db=-12.0, max_gain_db=6.0, p=aug.p),
        am.TimeMask(min_band_part=0.02, max_band_part=0.1, p=aug.p),
        am.BandStopFilter(p=aug.p),
    ])


_WORKER: dict = {}


def _init(aug: Augment, noise_files: list, clips: np.ndarray) -> None:
    _WORKER.update(pipe=_pipeline(aug, noise_files), clips=clips, seed=aug.seed)


def _one(job) -> np.ndarray:
    v, i = job
    h = int(np.random.SeedSequence([_WORKER["seed"], v, i]).generate_state(1)[0])
    random.seed(h)
    np.random.seed(h)
    y = _WORKER["pipe"](samples=_WORKER["clips"][i], sample_rate=SAMPLE_RATE)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def augment_clips(clips: np.ndarray, noise_files: list, aug: Augment, workers: int = 2) -> np.ndarray:
    """``aug.variants`` augmented copies of ``clips (n, samples)``: an array ``(variants, n, samples)``."""
    clips = np.asarray(clips, dtype=np.float32)
    jobs = [(v, i) for v in range(aug.variants) for i in range(len(clips))]
    if workers <= 1:
        _init(aug, noise_files, clips)
        out = [_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(aug, noise_files, clips)) as pool:
            out = list(pool.map(_one, jobs, chunksize=64))
    return np.stack(out).reshape(aug.variants, len(clips), clips.shape[1])
