"""Seconds per epoch of the speech-commands GLE network, projected to the real dataset's size.

Times training steps (forward, local errors, per-step Adam) of the shipped protocol's network (built
by the task's ``network_factory``: one input per Mel bin, 12 outputs, batch 256) and evaluation
steps (no learning), then projects one epoch of Google Speech Commands v2 (12 classes) at the
split sizes given below and the paper's 420 epochs.  The paper's 3 x 150 network is timed in the
same run as the baseline of the ratio printed last.  Usage:  .venv/bin/python benchmarks/speech_epoch_time.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cortical_gle.data.speech_commands import CLASS_NAMES
from cortical_gle.protocol import load_protocol
from cortical_gle.tasks.classify import network_factory

# 12-class Speech Commands v2 with the usual unknown/silence balancing (one average class each)
REAL_SPLITS = {"train": 36_923, "val": 4_445, "test": 4_890}


def per_step(net, learn, batch, steps):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, net.spec.n_in)).astype(net.dtype)
    y = np.broadcast_to(rng.integers(0, len(CLASS_NAMES), batch), (steps, batch))
    net.run(x[:10], y[:10], learn=learn, record=("r_out", "loss"))
    t0 = time.perf_counter()
    net.run(x, y, learn=learn, record=("r_out", "loss"))
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps-per-frame", type=int, default=None,
                    help="Euler steps per Mel frame (default: the shipped speech-commands protocol's)")
    ap.add_argument("--epochs", type=int, default=420)
    args = ap.parse_args()
    cfg = load_protocol("speech-commands")[0]
    nw = cfg.network
    if args.steps_per_frame is None:
        args.steps_per_frame = nw.steps_per_frame
    batch = 256

    def timed(network):   # built as the task builds it
        net = network_factory(network, cfg.data.n_mels, len(CLASS_NAMES), cfg.dt, cfg.training.lr, seed=0)()
        return per_step(net, True, batch, 300), per_step(net, False, batch, 300)

    t_train, t_eval = timed(nw)
    t_paper, _ = timed(nw.model_copy(update={"n_le": 50, "n_li": 100}))
    steps_per_clip = cfg.data.n_frames * args.steps_per_frame
    train_s = np.ceil(REAL_SPLITS["train"] / batch) * steps_per_clip * t_train
    eval_s = sum(np.ceil(REAL_SPLITS[s] / batch) for s in ("val", "test")) * steps_per_clip * t_eval
    epoch = train_s + eval_s
    print(f"speech network, {nw.n_hidden} x {nw.n_le + nw.n_li} ({nw.n_le} LE + {nw.n_li} LI), batch {batch}, "
          f"{steps_per_clip} steps per clip ({cfg.data.n_frames} frames x {args.steps_per_frame})")
    print(f"  training step {t_train * 1e3:.2f} ms ({1 / t_train:.0f} steps/s), evaluation step {t_eval * 1e3:.2f} ms")
    print(f"  real-size epoch ({REAL_SPLITS['train']} train + {REAL_SPLITS['val']} val + {REAL_SPLITS['test']} "
          f"test clips): {epoch:.0f} s  ({train_s:.0f} s training, {eval_s:.0f} s evaluation)")
    print(f"  projected {args.epochs} epochs: {epoch * args.epochs / 3600:.1f} h")
    print(f"  training step / the paper's 3 x 150 network's ({t_paper * 1e3:.2f} ms, same run): "
          f"{t_train / t_paper:.2f}")


if __name__ == "__main__":
    main()
