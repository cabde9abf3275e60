"""Google Speech Commands (12 classes) classified online by GLE, with an MLP baseline
(docs/model.md#tasks-and-published-numbers).

Each clip becomes ``n_frames`` log-Mel frames of ``n_mels`` bins (with
``data.cmn``, less the clip's own mean spectrum; then normalised per bin with
the training set's mean and deviation); each frame is held for
``steps_per_frame`` Euler steps and passed through two low-pass stages of time
constant ``input_tau`` (:func:`smooth_input`).  Training and readout as in :mod:`.classify`.
Without ``data.path`` the protocol synthesises a spoken-commands set with
espeak-ng, festival and flite (:mod:`cortical_gle.data.speech_synth`): held-out
voices for validation and the ``test`` split, the held-out synthesiser
(flite) for ``test_synth``.  With ``data.augment``, every training clip has
augmented copies (:mod:`cortical_gle.data.speech_augment`); each epoch draws,
per clip, the clean clip or one of its copies (seeded by the run seed and the
epoch).  Validation and test clips are never augmented; the learning-rate
plateau follows the validation loss only.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..baselines import train_mlp
from ..data import default_cache_dir
from ..data.speech_augment import Augment
from ..data.speech_commands import CLASS_NAMES, load_speech_commands
from ..data.speech_synth import ESPEAK_ACCENTS, HELD_OUT_CHOICES, synthesize_speech_commands
from .classify import (MLP, ClassifierProtocol, LaggedNetwork, Training, confusion_matrix, network_factory,
                       plot_confusion, plot_learning_curves, train_online)
from .fields import NonNegativeTime, Time


class Synth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_speakers: int = Field(240, ge=2, description="spread evenly over espeak-ng and festival")
    val_speakers: int = Field(12, ge=1, description="held-out espeak-ng voices")
    test_speakers: int = Field(12, ge=1, description="other held-out espeak-ng voices")
    test_synth_speakers: int = Field(12, ge=1, description="speakers of the held-out synthesiser")
    repetitions: int = Field(4, ge=1)
    snr_db: list[float] = [30.0, 20.0, 10.0]
    seed: int = 0
    held_out: Literal[HELD_OUT_CHOICES] = Field(HELD_OUT_CHOICES[0], description="the synthesiser of test_synth; the "
                                                   "other one trains next to espeak-ng")


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="local Speech Commands v2 folder; None: synthesise one")
    synth: Synth = Synth()
    augment: Augment | None = Field(Augment(), description="augmented training copies; None: none")
    cmn: bool = Field(True, description="subtract each clip's mean log-Mel spectrum (cepstral mean "
                                        "normalisation) before the per-bin standardisation")
    n_mels: int = Field(32, ge=4)
    n_frames: int = Field(32, ge=2)
    cache_dir: str | None = None
    val_accent: Literal[ESPEAK_ACCENTS] | None = Field(
        None, description="cross-validation fold of a synthesised set: this espeak-ng accent's training voices "
                          "are the validation split and the listed validation voices sit out (None: as listed)")


class Network(LaggedNetwork):
    n_hidden: int = Field(3, ge=1)
    n_le: int = Field(50, ge=0)
    n_li: int = Field(100, ge=0)
    tau: Time = 1.0
    steps_per_frame: int = Field(8, ge=1)
    input_tau: NonNegativeTime = Field(0.0, description="time constant of two exponential low-pass stages on the "
                                                        "held Mel frames (0: frames held as steps)")


class Config(ClassifierProtocol):
    task: Literal["speech-commands"]
    dt: Time = 0.05
    data: Data = Data()
    network: Network = Network()
    training: Training = Training(epochs=120, batch=256, lr=1e-3, plateau_patience=3)
    mlp: MLP = MLP(epochs=60)


def smooth_input(x: np.ndarray, tau: float, dt: float) -> np.ndarray:
    r"""Two exponential low-pass stages of time constant ``tau`` along the steps of ``x (steps, B, n)``.

    Each stage is :math:`y_n = a x_n + (1-a) y_{n-1}` with :math:`a = 1 - e^{-dt/\tau}` (the
    exact step of :math:`\tau \dot y = x - y` for a held input), started at rest on the first
    value, so a constant input passes unchanged.  Two stages make the input's slope continuous:
    a held frame's jump makes GLE's prospective errors ring, and the first layer's update (error
    times input) then points away from the gradient (README, speech commands).  ``tau = 0``: ``x``.
    """
    if tau == 0:
        return x
    # lfilter's own recursion (direct form II transposed), in float64: the same values, and ~6x faster than
    # lfilter along the first axis of a (256, 256, 32) batch (27 against 168 ms: a hot path, every batch)
    a = -np.expm1(-dt / tau)
    x = np.asarray(x, dtype=np.float64)
    for _ in range(2):
        y, z = np.empty_like(x), (1.0 - a) * x[0]
        for n in range(len(x)):
            y[n] = a * x[n] + z
            z = (1.0 - a) * y[n]
        x = y
    return x


def standardiser(cfg: Config, x_train: np.ndarray):
    """The input normalisation, fitted on the training clips ``(clips, frames, mels)``: with ``data.cmn``
    each clip less its mean log spectrum (cepstral mean normalisation: that mean holds the channel, i.e.
    synthesiser, room and level), then each Mel bin standardised with the training set's mean and deviation."""
    cmn = (lambda x: x - x.mean(axis=-2, keepdims=True)) if cfg.data.cmn else (lambda x: x)
    centred = cmn(x_train)
    mean, std = centred.mean(axis=(0, 1)), centred.std(axis=(0, 1)) + 1e-6
    return lambda x: (cmn(x) - mean) / std


def frames_to_steps(x: np.ndarray, nw: Network, dt: float) -> np.ndarray:
    """Clips ``(B, frames, mels)`` as network input ``(steps, B, mels)``: each frame held for
    ``nw.steps_per_frame`` steps, then smoothed with ``nw.input_tau`` (:func:`smooth_input`)."""
    held = np.repeat(np.swapaxes(x, 0, 1), nw.steps_per_frame, axis=0)
    return smooth_input(held, nw.input_tau, dt).astype(held.dtype, copy=False)


def _cache_root(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()


def dataset_folder(cfg: Config, log=print) -> Path:
    """The real folder if given, else a synthesised one (made once, reused)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    s = cfg.data.synth
    key = hashlib.sha256(json.dumps({**s.model_dump(), "version": 3}, sort_keys=True).encode()).hexdigest()[:12]
    folder = _cache_root(cfg) / f"speech_synth_{key}"
    if not (folder / "DONE").exists():
        log(f"speech-commands: synthesising a spoken-commands set (espeak-ng, festival, flite) in {folder} ...")
        counts = synthesize_speech_commands(folder, s.train_speakers, s.val_speakers, s.test_speakers,
                                            s.test_synth_speakers, s.repetitions, snr_db=tuple(s.snr_db),
                                            seed=s.seed, held_out=s.held_out)
        (folder / "DONE").write_text(json.dumps(counts))
    return folder


def load_data(cfg: Config, augment: bool = True) -> tuple:
    """``(folder, data, norm)``: the run's dataset folder, its features (:func:`load_speech_commands`;
    augmented training copies unless ``augment`` is False) and its input normalisation
    (:func:`standardiser`), as the task feeds them (also what ``scripts/`` read a run with)."""
    folder = dataset_folder(cfg)
    data = load_speech_commands(folder, cfg.data.n_mels, cfg.data.n_frames, cache_dir=_cache_root(cfg),
                                augment=cfg.data.augment if augment else None, val_accent=cfg.data.val_accent)
    return folder, data, standardiser(cfg, data["x_train"])


def run(cfg: Config, ctx) -> dict:
    folder, data, norm = load_data(cfg)
    splits = data["splits"]                      # train, val, test (+ test_synth)
    tests = [s for s in splits if s.startswith("test")]
    xs = {s: norm(data[f"x_{s}"]) for s in splits}
    ys = {s: data[f"y_{s}"] for s in splits}
    # variant 0 is the clean clip, 1.. its augmented copies
    train_variants = np.concatenate([xs["train"][None], norm(data["x_train_aug"])]) \
        if "x_train_aug" in data else xs["train"][None]
    nw = cfg.network

    def as_steps(x):
        return frames_to_steps(x, nw, cfg.dt)

    def getter(split):
        return lambda idx: (as_steps(xs[split][idx]), ys[split][idx])

    def train_getter(idx):
        # the epoch under way is the one train_online records as started (resume-safe)
        epoch = ctx.partial["gle"]["epoch"]
        pick = np.random.default_rng([ctx.seed, epoch, 1]).integers(0, len(train_variants), len(ys["train"]))
        return as_steps(train_variants[pick[idx], idx]), ys["train"][idx]

    results = {}
    for method in cfg.methods:
        t0 = time.perf_counter()
        if method == "gle":
            make_net = network_factory(nw, cfg.data.n_mels, len(CLASS_NAMES), cfg.dt, cfg.training.lr, ctx.seed,
                                       ctx.engine)
            res = train_online(make_net, (train_getter, ys["train"]),
                               {s: (getter(s), ys[s]) for s in splits if s != "train"},
                               cfg.training, ctx, monitor="val")
            res.pop("net")
            res["seconds_per_epoch"] = res["train_time_s"] / max(1, len(res["train_acc"]))
        else:
            m = cfg.mlp
            flat = {s: v.reshape(len(v), -1) for s, v in xs.items()}
            x_tr = train_variants.reshape(-1, train_variants.shape[2] * train_variants.shape[3])
            res = train_mlp(x_tr, np.tile(ys["train"], len(train_variants)), flat["test"], ys["test"],
                            hidden=tuple(m.hidden), epochs=m.epochs, lr=m.lr, batch=m.batch, seed=ctx.seed,
                            extra_tests={s: (flat[s], ys[s]) for s in splits if s not in ("train", "test")})
        res["wall_time_s"] = round(time.perf_counter() - t0, 2)
        for s in tests:
            key = "confusion_matrix" if s == "test" else f"confusion_matrix_{s}"
            res[key] = confusion_matrix(ys[s], np.asarray(res[f"{s}_pred"]), len(CLASS_NAMES)).tolist()
        results[method] = res
    plot_learning_curves(ctx, results, ("val", *tests), {"paper GLE 91.5 % (real set, val)": 91.5},
                         "Speech commands (12 classes)")
    plot_confusion(ctx, results, list(CLASS_NAMES))
    return {"methods": results, "class_names": list(CLASS_NAMES), "dataset": str(folder),
            "synthesised": cfg.data.path is None, "report": data["report"],
            **{f"n_{s}": int(len(ys[s])) for s in splits},
            "n_train_augmented_copies": len(train_variants) - 1,
            **{f"final_{s}_acc": {k: v[f"final_{s}_acc"] for k, v in results.items()} for s in tests}}
