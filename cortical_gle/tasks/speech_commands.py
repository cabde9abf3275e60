"""Google Speech Commands (12 classes) classified online by GLE, with an MLP baseline
(docs/model.md#tasks-and-published-numbers).

Each clip becomes ``n_frames`` log-Mel frames of ``n_mels`` bins (normalised
per bin with the training set's mean and deviation); each frame is held for
``steps_per_frame`` Euler steps.  Training and readout as in :mod:`.classify`.
Without ``data.path`` the protocol synthesises a spoken-commands set with
espeak-ng (held-out speakers in the validation and test lists) and uses it.
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
from ..data.speech_commands import CLASS_NAMES, load_speech_commands
from ..data.speech_synth import synthesize_speech_commands
from .classify import (MLP, ClassifierProtocol, LaggedNetwork, Training, confusion_matrix, network_factory,
                       plot_confusion, plot_learning_curves, train_online)
from .fields import Time


class Synth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_speakers: int = Field(60, ge=1)
    val_speakers: int = Field(12, ge=1)
    test_speakers: int = Field(12, ge=1)
    repetitions: int = Field(4, ge=1)
    snr_db: list[float] = [30.0, 20.0, 10.0]
    seed: int = 0


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="local Speech Commands v2 folder; None: synthesise one")
    synth: Synth = Synth()
    n_mels: int = Field(32, ge=4)
    n_frames: int = Field(32, ge=2)
    cache_dir: str | None = None


class Network(LaggedNetwork):
    n_hidden: int = Field(3, ge=1)
    n_le: int = Field(50, ge=0)
    n_li: int = Field(100, ge=0)
    tau: Time = 1.0
    steps_per_frame: int = Field(8, ge=1)


class Config(ClassifierProtocol):
    task: Literal["speech-commands"]
    dt: Time = 0.05
    data: Data = Data()
    network: Network = Network()
    training: Training = Training(epochs=120, batch=256, lr=1e-3, plateau_patience=3)
    mlp: MLP = MLP(epochs=60)


def _cache_root(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()


def dataset_folder(cfg: Config, log=print) -> Path:
    """The real folder if given, else a synthesised one (made once, reused)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    s = cfg.data.synth
    key = hashlib.sha256(json.dumps(s.model_dump(), sort_keys=True).encode()).hexdigest()[:12]
    folder = _cache_root(cfg) / f"speech_synth_{key}"
    if not (folder / "DONE").exists():
        log(f"speech-commands: synthesising a spoken-commands set with espeak-ng in {folder} ...")
        counts = synthesize_speech_commands(folder, s.train_speakers, s.val_speakers, s.test_speakers,
                                            s.repetitions, snr_db=tuple(s.snr_db), seed=s.seed)
        (folder / "DONE").write_text(json.dumps(counts))
    return folder


def run(cfg: Config, ctx) -> dict:
    folder = dataset_folder(cfg)
    data = load_speech_commands(folder, cfg.data.n_mels, cfg.data.n_frames, cache_dir=_cache_root(cfg))
    mean = data["x_train"].mean(axis=(0, 1))
    std = data["x_train"].std(axis=(0, 1)) + 1e-6
    xs = {s: (data[f"x_{s}"] - mean) / std for s in ("train", "val", "test")}
    ys = {s: data[f"y_{s}"] for s in ("train", "val", "test")}
    nw, spf = cfg.network, cfg.network.steps_per_frame

    def getter(split):
        def get(idx):
            x = xs[split][idx]                       # (B, frames, mels)
            return np.repeat(np.swapaxes(x, 0, 1), spf, axis=0), ys[split][idx]
        return get

    results = {}
    for method in cfg.methods:
        t0 = time.perf_counter()
        if method == "gle":
            make_net = network_factory(nw, cfg.data.n_mels, len(CLASS_NAMES), cfg.dt, cfg.training.lr, ctx.seed, ctx.engine)
            res = train_online(make_net, (getter("train"), ys["train"]),
                               {"val": (getter("val"), ys["val"]), "test": (getter("test"), ys["test"])},
                               cfg.training, ctx, monitor="val")
            res.pop("net")
            res["seconds_per_epoch"] = res["train_time_s"] / max(1, len(res["train_acc"]))
        else:
            m = cfg.mlp
            flat = {s: v.reshape(len(v), -1) for s, v in xs.items()}
            res = train_mlp(flat["train"], ys["train"], flat["test"], ys["test"], hidden=tuple(m.hidden),
                            epochs=m.epochs, lr=m.lr, batch=m.batch, seed=ctx.seed)
            res["test_pred"] = res["test_pred"].tolist()
            res["final_test_acc"], res["final_train_acc"] = res["test_acc"][-1], res["train_acc"][-1]
        res["wall_time_s"] = round(time.perf_counter() - t0, 2)
        res["confusion_matrix"] = confusion_matrix(ys["test"], np.asarray(res["test_pred"]), len(CLASS_NAMES)).tolist()
        results[method] = res
    plot_learning_curves(ctx, results, ("val", "test"), {"paper GLE 91.5 % (real set, val)": 91.5},
                         "Speech commands (12 classes)")
    plot_confusion(ctx, results, list(CLASS_NAMES))
    return {"methods": results, "class_names": list(CLASS_NAMES), "dataset": str(folder),
            "synthesised": cfg.data.path is None, "report": data["report"],
            "n_train": int(len(ys["train"])), "n_val": int(len(ys["val"])), "n_test": int(len(ys["test"])),
            "final_test_acc": {k: v["final_test_acc"] for k, v in results.items()}}
