"""GLE's summed weight update against the exact BPTT gradient, per layer, for a speech-commands or MNIST-1D run.

    python scripts/gradient_alignment.py RUN_DIR [--carried] [--input-tau T] [--batch 64]

Loads the run's settings and data, takes ``--batch`` training sequences (clean, fixed seed), and
prints, for a fresh network (the run's seed) and each checkpoint in RUN_DIR, the cosine between
GLE's update (``accumulate_gradients``) and ``bptt_gradient`` for every weight matrix, and the
ratio of their norms; then each layer's error units (rms of ``e``, and the rms of its step-to-step
change over that: about 2 for an error that flips sign every step).  Both start from rest, or with
``--carried`` from the state another batch leaves (MNIST-1D trains with ``carry_state``).
``--input-tau`` overrides speech's ``network.input_tau`` (README, speech commands).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from cortical_gle.data.mnist1d import as_steps, load_mnist1d
from cortical_gle.engines import get_engine
from cortical_gle.engines.numpy_.bptt import bptt_gradient, flatten
from cortical_gle.tasks import mnist1d, speech_commands
from cortical_gle.tasks.classify import network_factory


def _cos(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def speech_batch(resolved: dict, args) -> tuple:
    """``(cfg, n_in, n_classes, y_train, steps)``: ``steps(idx)`` is the network input (steps, batch,
    n_in) of those training sequences, as the task feeds them."""
    task = speech_commands
    cfg = task.Config(**resolved)
    if args.input_tau is not None:
        cfg.network.input_tau = args.input_tau
    _, data, norm = task.load_data(cfg, augment=False)
    return (cfg, cfg.data.n_mels, len(task.CLASS_NAMES), data["y_train"],
            lambda idx: task.frames_to_steps(norm(data["x_train"][idx]), cfg.network, cfg.dt))


def mnist1d_batch(resolved: dict, args) -> tuple:
    task = mnist1d
    cfg = task.Config(**resolved)
    if args.input_tau is not None:
        raise SystemExit("--input-tau is a speech-commands setting")
    d = cfg.data
    data = load_mnist1d(d.final_seq_length, seed=d.seed, cache_dir=d.cache_dir)
    if d.n_train:
        data["x"], data["y"] = data["x"][: d.n_train], data["y"][: d.n_train]
    train_idx = task.validation_split(len(data["y"]), d.n_val, d.seed)[1]
    x, y = data["x"][train_idx], data["y"][train_idx]
    return cfg, 1, 10, y, lambda idx: as_steps(x[idx], d.upsample)


TASKS = {"speech-commands": speech_batch, "mnist1d": mnist1d_batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--input-tau", type=float, default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--carried", action="store_true",
                    help="start both from the state another batch of training sequences leaves (training's "
                         "carry_state) instead of rest")
    args = ap.parse_args()
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    name = config["resolved"]["task"]
    if name not in TASKS:
        raise SystemExit(f"{args.run_dir} is a {name!r} run; this script reads {', '.join(TASKS)}")
    cfg, n_in, n_classes, y_train, steps = TASKS[name](config["resolved"], args)
    idx = np.random.default_rng(5).choice(len(y_train), args.batch, replace=False)
    before = np.random.default_rng(6).choice(np.setdiff1d(np.arange(len(y_train)), idx), args.batch, replace=False)
    x, x_before = steps(idx), steps(before)
    y = np.broadcast_to(y_train[idx], (len(x), args.batch))
    y_before = np.broadcast_to(y_train[before], (len(x), args.batch))
    nets = {"fresh network": network_factory(cfg.network, n_in, n_classes, cfg.dt, cfg.training.lr,
                                             config["seed"])()}
    for path in sorted(args.run_dir.glob("checkpoint_*.npz")):
        nets[path.name] = get_engine("numpy").load(path)
    print(f"{name}: {args.batch} training sequences, {len(x)} steps each, from "
          + ("the state another batch leaves" if args.carried else "rest")
          + (f", input_tau = {cfg.network.input_tau:g}" if name == "speech-commands" else ""))
    for label, net in nets.items():
        xs, start = x.astype(net.dtype), None
        if args.carried:
            net.run(x_before.astype(net.dtype), y_before, record=())
            start = net.state_snapshot()
        g = net.accumulate_gradients(xs, y, learn_tau=False, initial_state=start)
        b = bptt_gradient(net, xs, y, initial_state=start)
        per = ", ".join(f"{_cos(gw, bw):.3f}" for gw, bw in zip(g["W"], b["W"]))
        print(f"{label:28s} cos(GLE, BPTT) per W: {per}; all: {_cos(flatten(g), flatten(b)):.3f}; "
              f"|GLE| / |BPTT| = {np.linalg.norm(flatten(g)) / np.linalg.norm(flatten(b)):.2f}, "
              f"|BPTT| = {np.linalg.norm(flatten(b)):.3g}")
        if start is not None:
            net.restore_state(start)
        e = net.run(xs, y, record=("e",), reset=start is None)["e"]
        sizes = [len(w) for w in net.weights]       # the record pads every layer to the widest
        rms = np.array([np.sqrt((e[:, l, :, :n] ** 2).mean()) for l, n in enumerate(sizes)])
        flip = np.array([np.sqrt((np.diff(e[:, l, :, :n], axis=0) ** 2).mean())
                         for l, n in enumerate(sizes)]) / rms
        print(f"{'':28s} rms e per layer: {', '.join(f'{v:.3g}' for v in rms)}; "
              f"step change / rms: {', '.join(f'{v:.2f}' for v in flip)}")


if __name__ == "__main__":
    main()
