"""Seconds per epoch of the speech-commands GLE network, projected to the real dataset's size.

Times training steps (forward, local errors, per-step Adam) of the protocol's network (3 hidden
layers of 150, 32 Mel inputs, 12 outputs, batch 256) and evaluation steps (no learning), then
projects one epoch of Google Speech Commands v2 (12 classes) at the split sizes given below and
the paper's 420 epochs.  Usage:  .venv/bin/python benchmarks/speech_epoch_time.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.networks import lagged_mlp_network

# 12-class Speech Commands v2 with the usual unknown/silence balancing (one average class each)
REAL_SPLITS = {"train": 36_923, "val": 4_445, "test": 4_890}


def per_step(net, learn, batch, steps):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, 32)).astype(net.dtype)
    y = np.broadcast_to(rng.integers(0, 12, batch), (steps, batch))
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
    if args.steps_per_frame is None:
        from cortical_gle.protocol import load_protocol
        args.steps_per_frame = load_protocol("speech-commands")[0].network.steps_per_frame
    spec = lagged_mlp_network(32, 12, 3, 50, 100, 1.0, 0.05)
    net = GLENetwork(spec, 0.05, dtype=np.float32, seed=0)
    net.configure_learning("adam", lr=1e-3)
    batch = 256
    t_train = per_step(net, True, batch, 300)
    t_eval = per_step(net, False, batch, 300)
    steps_per_clip = 32 * args.steps_per_frame
    train_s = np.ceil(REAL_SPLITS["train"] / batch) * steps_per_clip * t_train
    eval_s = sum(np.ceil(REAL_SPLITS[s] / batch) for s in ("val", "test")) * steps_per_clip * t_eval
    epoch = train_s + eval_s
    print(f"speech network, batch {batch}, {steps_per_clip} steps per clip (32 frames x {args.steps_per_frame})")
    print(f"  training step {t_train * 1e3:.2f} ms ({1 / t_train:.0f} steps/s), evaluation step {t_eval * 1e3:.2f} ms")
    print(f"  real-size epoch ({REAL_SPLITS['train']} train + {REAL_SPLITS['val']} val + {REAL_SPLITS['test']} "
          f"test clips): {epoch:.0f} s  ({train_s:.0f} s training, {eval_s:.0f} s evaluation)")
    print(f"  projected {args.epochs} epochs: {epoch * args.epochs / 3600:.1f} h")


if __name__ == "__main__":
    main()
