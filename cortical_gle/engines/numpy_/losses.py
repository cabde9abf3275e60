r"""Output losses: the loss value and the output layer's top-down term.

For a batch of ``B`` samples the reported loss is the batch mean of

.. math::

    L_\mathrm{MSE} = \tfrac12 \lVert y - r_L \rVert^2, \qquad
    L_\mathrm{CE} = -\log \mathrm{softmax}(r_L)_y ,

and the output layer's top-down term is ``beta * (-dL/dr_L)`` per sample:
``beta (y - r_L)`` and ``beta (onehot(y) - softmax(r_L))`` (docs/model.md#continuous-model).
"""
from __future__ import annotations

import numpy as np


def check_target(kind: str, target, batch: int, n_out: int) -> np.ndarray:
    """Validate a target batch; MSE wants floats (B, n_out), CE int labels (B,)."""
    target = np.asarray(target)
    if kind == "mse":
        if target.shape != (batch, n_out):
            raise ValueError(f"target must have shape (batch, n_out) = {(batch, n_out)}, got {target.shape}")
        if not np.all(np.isfinite(target)):
            raise ValueError("target contains NaN or inf")
    else:
        if target.shape != (batch,) or not np.issubdtype(target.dtype, np.integer):
            raise ValueError(f"cross-entropy target must be integer labels of shape ({batch},), "
                             f"got {target.dtype} {target.shape}")
        if target.size and (target.min() < 0 or target.max() >= n_out):
            raise ValueError(f"labels must lie in [0, {n_out}), got {target.min()}..{target.max()}")
    return target


def softmax(r: np.ndarray) -> np.ndarray:
    z = r - r.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def loss_and_dloss(kind: str, r: np.ndarray, target: np.ndarray):
    """Batch-mean loss and the per-sample derivative ``dL/dr`` (not divided by B)."""
    if kind == "mse":
        diff = r - target
        return 0.5 * float(np.mean(np.sum(diff * diff, axis=-1))), diff
    p = softmax(r)
    idx = np.arange(r.shape[0])
    loss = -float(np.mean(np.log(np.maximum(p[idx, target], np.finfo(p.dtype).tiny))))
    p[idx, target] -= 1.0
    return loss, p
