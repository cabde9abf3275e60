r"""Exact gradients of the discretised network: backpropagation through the Euler steps.

The ground truth that GLE is compared against.  With no error in the network
(``e = 0``) each step of :func:`~.dynamics.gle_step` is, per layer,

.. math::

    I(t) = W r_{l-1}(t) + b, \quad \dot u(t) = (I - u)/\tau_m, \quad
    r(t{+}1) = \varphi(u + \tau_r \dot u), \quad u(t{+}1) = u + dt\,\dot u ,

and the loss is :math:`\mathcal{L} = \sum_{t=0}^{T-1} L(r_L(t), y(t))` (batch mean),
pairing ``r_L(t)`` with ``y(t)`` exactly as the GLE output error does.  The
adjoint recursion, with :math:`g = \bar r(t{+}1)\,\varphi'(\breve u(t{+}1))` and
:math:`\bar{\dot u} = dt\,\bar u(t{+}1) + \tau_r g`, is

.. math::

    \bar u(t) = \bar u(t{+}1) + g - \bar{\dot u}/\tau_m, \quad
    \bar I = \bar{\dot u}/\tau_m, \quad
    \bar W \mathrel{+}= \bar I\, r_{l-1}(t)^T, \quad
    \bar\tau_m \mathrel{+}= -\bar{\dot u}\,\dot u/\tau_m, \quad
    \bar\tau_r \mathrel{+}= g\,\dot u, \quad
    \bar r_{l-1}(t) \mathrel{+}= W^T \bar I .

Truncation to a window of ``K`` steps backpropagates each loss term
``L(r_L(j), y(j))`` through steps ``j-1 .. j-K`` only (earlier states are
constants), which is what online truncated BPTT computes.
"""
from __future__ import annotations

import numpy as np

from .dynamics import GLEState, gle_step
from .losses import check_target, loss_and_dloss


def _copy_state(state: GLEState) -> GLEState:
    return GLEState(*(getattr(state, f).copy() for f in GLEState.__dataclass_fields__))


def forward_record(net, x, initial_state: GLEState | None = None):
    """Run ``x`` (steps, batch, n_in) without errors and record what the adjoint needs.

    Returns a dict with ``x_in`` (T, L, B, N), ``du`` (T, L, B, N),
    ``rp_next`` = phi'(u_pro(t+1)) (T, L, B, N) and ``r_out`` (T+1, B, n_out),
    where ``r_out[t]`` is the output *before* step ``t``, and ``state``, the
    state after the last step.  The network's own state is not touched.
    """
    x = np.asarray(x, dtype=net.dtype)
    if x.ndim != 3 or x.shape[2] != net.spec.n_in:
        raise ValueError(f"x must have shape (steps, batch, {net.spec.n_in}), got {x.shape}")
    T, B = x.shape[:2]
    if initial_state is None:
        st = GLEState.zeros(net.n_layers, B, net.width, net.dtype)
    else:
        st = _copy_state(initial_state)
        st.v[...] = 0.0
        st.top[...] = 0.0
        st.e[...] = 0.0
    L, N, n_out = net.n_layers, net.width, net.spec.n_out
    rec = {k: np.empty((T, L, B, N), dtype=net.dtype) for k in ("x_in", "du", "rp_next")}
    rec["r_out"] = np.empty((T + 1, B, n_out), dtype=net.dtype)
    for t in range(T):
        rec["r_out"][t] = st.R[-1, :, :n_out]
        st.R[0, :, : net.spec.n_in] = x[t]
        rec["x_in"][t] = st.R[:L]
        gle_step(net.params, st, x[t], net.dt)
        rec["du"][t] = st.du
        rec["rp_next"][t] = st.rp
    rec["r_out"][T] = st.R[-1, :, :n_out]
    rec["state"] = st
    return rec


def sequence_loss(net, x, target, initial_state=None) -> float:
    """``sum_t L(r_L(t), y(t))`` for t = 0..T-1 (batch means), from a fresh forward run."""
    rec = forward_record(net, x, initial_state)
    return float(sum(loss_and_dloss(net.spec.loss, rec["r_out"][t], target[t])[0] for t in range(len(x))))


def bptt_gradient(net, x, target, window: int | None = None, initial_state: GLEState | None = None,
                  padded: bool = False):
    """Exact (or window-truncated) gradient of the sequence loss.

    Parameters
    ----------
    net : GLENetwork
        Supplies parameters, ``dt`` and the loss; its state is not touched.
    x : ndarray, shape (steps, batch, n_in)
    target : ndarray, shape (steps, batch, n_out) (MSE) or (steps, batch) int labels (CE)
    window : int, optional
        Truncation in steps; ``None`` backpropagates through the whole sequence.
    initial_state : GLEState, optional
        State at the start of ``x`` (zeros by default); treated as a constant.

    padded : bool
        Also return the gradients in the engine's stacked layout (``flat``: W
        then b, ``tau_flat``) and the state after the sequence (``state``), so
        an optimizer can apply them directly (online truncated BPTT), and the
        outputs after each step (``r_after``).

    Returns
    -------
    dict
        ``loss`` (float), ``losses`` (per step), and lists ``W``, ``b``, ``tau_m``,
        ``tau_r`` of gradients with the shapes of :attr:`GLENetwork.weights`,
        ``biases``, ``tau_m`` and ``tau_r``.
    """
    if window is not None and (not isinstance(window, (int, np.integer)) or window < 1):
        raise ValueError(f"window must be a positive number of steps or None, got {window!r}")
    rec = forward_record(net, x, initial_state)
    T, L, B, N = rec["x_in"].shape
    p = net.params
    n_out = net.spec.n_out
    dloss = np.zeros((T, B, n_out), dtype=net.dtype)
    losses = np.empty(T)
    for t in range(T):
        tgt = check_target(net.spec.loss, target[t], B, n_out)
        losses[t], d = loss_and_dloss(net.spec.loss, rec["r_out"][t], tgt)
        dloss[t] = d / B
    n_slots = 1 if window is None else T
    ubar = np.zeros((n_slots, L, B, N), dtype=net.dtype)
    rbar = np.zeros((n_slots, L, B, N), dtype=net.dtype)
    gW = np.zeros_like(p.W)
    gb = np.zeros_like(p.b)
    gtau = np.zeros_like(p.tau_m)
    gtau_r = np.zeros_like(p.tau_r)
    tau_m, tau_r, dt = p.tau_m[:, None, :], p.tau_r[:, None, :], net.dt
    for s in range(T - 1, -1, -1):
        if s + 1 <= T - 1:  # the loss on r_L(s+1) enters before step s is undone
            j = 0 if window is None else s + 1
            rbar[j, L - 1, :, :n_out] += dloss[s + 1]
        if window is None:
            a, z = 0, 1
        else:
            a, z = s + 1, min(s + window, T - 1) + 1
            if a >= z:
                continue
        rb, ub = rbar[a:z], ubar[a:z]
        g = rb * rec["rp_next"][s]
        dubar = dt * ub + tau_r * g
        Ibar = dubar / tau_m
        ub += g - Ibar
        Isum = Ibar.sum(axis=0)
        gW += np.matmul(Isum.transpose(0, 2, 1), rec["x_in"][s])
        gb += Isum.sum(axis=1)
        gtau -= (dubar.sum(axis=0) * rec["du"][s]).sum(axis=1) / p.tau_m
        gtau_r += (g.sum(axis=0) * rec["du"][s]).sum(axis=1)
        rb[:, L - 1] = 0.0
        if L > 1:
            rb[:, : L - 1] = np.matmul(Ibar[:, 1:], p.W[1:])
    sizes = net.spec.sizes
    for l, layer in enumerate(net.spec.layers):
        if not layer.bias:
            gb[l] = 0.0
    out = {}
    if padded:
        out = {"flat": np.concatenate([gW.ravel(), gb.ravel()]), "tau_flat": gtau.ravel().copy(), "state": rec["state"],
               "r_after": rec["r_out"][1:]}
    return {
        **out,
        "loss": float(losses.sum()), "losses": losses,
        "W": [gW[l, : sizes[l + 1], : sizes[l]].copy() for l in range(L)],
        "b": [gb[l, : sizes[l + 1]].copy() for l in range(L)],
        "tau_m": [gtau[l, : sizes[l + 1]].copy() for l in range(L)],
        "tau_r": [gtau_r[l, : sizes[l + 1]].copy() for l in range(L)],
    }


def flatten(grads: dict, keys=("W", "b")) -> np.ndarray:
    """Concatenate gradient lists into one vector (for cosine similarities)."""
    return np.concatenate([np.ravel(g) for k in keys for g in grads[k]])
