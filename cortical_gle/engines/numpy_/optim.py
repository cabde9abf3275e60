"""Optimizers that update a flat parameter buffer in place, every step.

The numpy engine keeps all weights and biases in one contiguous buffer, so one
fused call updates the whole network (per-step Adam is what the paper's
benchmarks use).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .dynamics import PARALLEL_MIN_SIZE


def _adam_py(theta, grad, m, s, lr_t, beta1, beta2, eps):
    for i in nb.prange(theta.size):
        g = grad[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        s[i] = beta2 * s[i] + (1.0 - beta2) * g * g
        theta[i] -= lr_t * m[i] / (math.sqrt(s[i]) + eps)


_adam_par = nb.njit(parallel=True, cache=True)(_adam_py)
_adam_seq = nb.njit(parallel=False, cache=True)(_adam_py)


class SGD:
    """Plain gradient descent, ``theta -= lr * grad``."""

    name = "sgd"

    def __init__(self, size: int, lr: float, dtype=np.float64):
        if not (lr > 0 and np.isfinite(lr)):
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = float(lr)
        self.dtype = dtype

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        theta -= self.lr * grad

    def state_dict(self) -> dict:
        return {"lr": np.asarray(self.lr)}

    def load_state_dict(self, d: dict) -> None:
        self.lr = float(d["lr"])


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, applied every step."""

    name = "adam"

    def __init__(self, size: int, lr: float, betas=(0.9, 0.999), eps=1e-8, dtype=np.float64):
        if not (lr > 0 and np.isfinite(lr)):
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr, self.betas, self.eps = float(lr), tuple(float(b) for b in betas), float(eps)
        self.m = np.zeros(size, dtype=dtype)
        self.s = np.zeros(size, dtype=dtype)
        self.t = 0
        self._dtype = np.dtype(dtype).type

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        b1, b2 = self.betas
        lr_t = self.lr * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        c = self._dtype
        kernel = _adam_par if theta.size >= PARALLEL_MIN_SIZE else _adam_seq
        kernel(theta, grad, self.m, self.s, c(lr_t), c(b1), c(b2), c(self.eps))

    def state_dict(self) -> dict:
        return {"lr": np.asarray(self.lr), "betas": np.asarray(self.betas), "eps": np.asarray(self.eps),
                "m": self.m, "s": self.s, "t": np.asarray(self.t)}

    def load_state_dict(self, d: dict) -> None:
        self.lr, self.t = float(d["lr"]), int(d["t"])
        if "betas" in d:   # files written before betas and eps were saved keep the defaults
            self.betas, self.eps = tuple(float(b) for b in np.ravel(d["betas"])), float(d["eps"])
        self.m[...] = d["m"]
        self.s[...] = d["s"]


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, size: int, lr: float, dtype=np.float64, **kwargs):
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}") from None
    return cls(size, lr, dtype=dtype, **kwargs)
