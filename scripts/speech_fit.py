"""How well a speech-commands run's network fits its clean training clips, their augmented copies and validation.

    python scripts/speech_fit.py RUN_DIR [--checkpoint checkpoint_gle_best.npz] [--n 2048]

GLE's training accuracy in ``metrics.json`` is measured online, while the weights move, on each
epoch's draw of clean clips and augmented copies.  This script evaluates the saved network without
learning (the run's readout) on ``--n`` training clips (fixed seed), clean and as their first
augmented copy, and on the validation set: a gap between clean and augmented shows how much of the
training accuracy the augmentation takes (README, speech commands).  Test sets are not read: they
choose nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from cortical_gle.engines import get_engine
from cortical_gle.tasks import speech_commands as task
from cortical_gle.tasks.classify import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--checkpoint", default=None,
                    help="file in RUN_DIR (default: checkpoint_gle_best.npz if there, else checkpoint_gle.npz)")
    ap.add_argument("--n", type=int, default=2048, help="training clips evaluated")
    args = ap.parse_args()
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    if config["resolved"]["task"] != "speech-commands":
        raise SystemExit(f"{args.run_dir} is a {config['resolved']['task']!r} run; this script reads speech-commands")
    cfg = task.Config(**config["resolved"])
    name = args.checkpoint or next((f for f in ("checkpoint_gle_best.npz", "checkpoint_gle.npz")
                                    if (args.run_dir / f).is_file()), "checkpoint_gle.npz")
    if not (args.run_dir / name).is_file():
        raise SystemExit(f"{args.run_dir} holds no GLE checkpoint {name}")
    net = get_engine(config["engine"]).load(args.run_dir / name)
    _, data, norm = task.load_data(cfg)
    idx = np.sort(np.random.default_rng(0).choice(len(data["y_train"]), min(args.n, len(data["y_train"])),
                                                  replace=False))
    sets = {"training, clean": (data["x_train"][idx], data["y_train"][idx])}
    if "x_train_aug" in data:
        sets["training, augmented copy"] = (data["x_train_aug"][0][idx], data["y_train"][idx])
    sets["validation"] = (data["x_val"], data["y_val"])
    skip = cfg.training.readout_start
    print(f"{args.run_dir / name} (epoch {net.extra.get('epoch', '?')})")
    for label, (x, y) in sets.items():
        x = norm(x)
        pred, _, loss = evaluate(net, lambda i: (task.frames_to_steps(x[i], cfg.network, cfg.dt), y[i]), len(y),
                                 cfg.training.batch, False, skip)
        print(f"  {label:26s} {100 * np.mean(pred == y):5.1f} %   loss {loss:.3f}   ({len(y)} clips)")


if __name__ == "__main__":
    main()
