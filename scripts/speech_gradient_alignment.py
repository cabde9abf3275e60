"""GLE's summed weight update against the exact BPTT gradient, per layer, for a speech-commands run.

    python scripts/speech_gradient_alignment.py RUN_DIR [--input-tau T] [--batch 64]

Loads the run's settings and data, takes ``--batch`` training clips (clean, fixed seed), and prints,
for a fresh network (the run's seed) and each checkpoint in RUN_DIR, the cosine between GLE's
update (``accumulate_gradients``) and ``bptt_gradient`` for every weight matrix, and the ratio
of their norms.  ``--input-tau`` overrides ``network.input_tau`` (README, speech commands).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from cortical_gle.engines import get_engine
from cortical_gle.engines.numpy_.bptt import bptt_gradient, flatten
from cortical_gle.tasks import speech_commands as task
from cortical_gle.tasks.classify import network_factory


def _cos(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--input-tau", type=float, default=None)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    cfg = task.Config(**config["resolved"])
    if args.input_tau is not None:
        cfg.network.input_tau = args.input_tau
    data = task.load_speech_commands(task.dataset_folder(cfg), cfg.data.n_mels, cfg.data.n_frames,
                                     cache_dir=task._cache_root(cfg))
    idx = np.random.default_rng(5).choice(len(data["y_train"]), args.batch, replace=False)
    norm = task.standardiser(cfg, data["x_train"])
    x = task.frames_to_steps(norm(data["x_train"][idx]), cfg.network, cfg.dt)
    y = np.broadcast_to(data["y_train"][idx], (len(x), len(idx)))
    nets = {"fresh network": network_factory(cfg.network, cfg.data.n_mels, len(task.CLASS_NAMES), cfg.dt,
                                             cfg.training.lr, config["seed"])()}
    for path in sorted(args.run_dir.glob("checkpoint_*.npz")):
        nets[path.name] = get_engine("numpy").load(path)
    print(f"input_tau = {cfg.network.input_tau:g}, {args.batch} training clips, {len(x)} steps each")
    for name, net in nets.items():
        xs = x.astype(net.dtype)
        g, b = net.accumulate_gradients(xs, y, learn_tau=False), bptt_gradient(net, xs, y)
        per = ", ".join(f"{_cos(gw, bw):.3f}" for gw, bw in zip(g["W"], b["W"]))
        print(f"{name:28s} cos(GLE, BPTT) per W: {per}; all: {_cos(flatten(g), flatten(b)):.3f}; "
              f"|GLE| / |BPTT| = {np.linalg.norm(flatten(g)) / np.linalg.norm(flatten(b)):.2f}")


if __name__ == "__main__":
    main()
