r"""GLE dynamics on the numpy engine: the one place on this engine where the update of
``docs/model.md#discrete-time`` lives.

Per layer and Euler step ``dt`` (Ellenberger et al. 2026, eqs. for the
representation and error units):

.. math::

    \mathrm{inst}_e &= \mathrm{top}\,\varphi'(\breve u(t)) \\
    \dot v &= (\mathrm{inst}_e - v)/\tau_v, \quad e = v + \tau_m \dot v,
        \quad v \leftarrow v + dt\,\dot v \\
    \dot u &= (W r_{l-1} + b + \gamma e - u)/\tau_m, \quad
        \breve u = u + \tau_r \dot u, \quad u \leftarrow u + dt\,\dot u \\
    \nabla_W &= -\langle e\, r_{l-1}^T \rangle_\mathrm{batch}, \quad
        \nabla_b = -\langle e \rangle, \quad
        \nabla_{\tau_m} = \langle e\,\dot u \rangle, \quad
        \nabla_{\tau_r} = -\langle e\,\dot u \rangle, \quad
        \mathrm{top}_{l-1} \leftarrow B^T e, \quad r = \varphi(\breve u)

The error unit relaxes with ``tau_v = tau_r`` (the paper's) or, with the network's
``error_tau``, ``tau_v = max(tau_r, error_tau)``.

The feedback weights ``B`` are ``W`` (exact transport, the paper), a fixed random
matrix (Lillicrap et al. 2016), ``sign(W)`` (Liao et al. 2016) or Kolen-Pollack
weights (Akrout et al. 2019) that :func:`kolen_pollack_step` moves after every
update of ``W``:

.. math::

    B \leftarrow (1 - \eta\lambda)\,(B + \Delta W_\mathrm{local}), \quad
    W \leftarrow (1 - \eta\lambda)\,(W + \Delta W_\mathrm{local})
    \;\Rightarrow\; B - W \leftarrow (1 - \eta\lambda)(B - W).

The ``tau_r`` gradient follows from the energy (docs/hypotheses.md):
``tau_r`` enters only through ``r = phi(u + tau_r du/dt)``, so
:math:`\partial E/\partial\tau_r = -(B^T e_{l+1})\varphi'\dot u`, the
instantaneous error times ``du/dt``; as for ``W`` and ``tau_m`` the error
unit's prospective ``e`` stands in for it.

Layout.  All layers are stored *stacked* and zero-padded to the widest layer,
``(n_layers, batch, width)``: the synchronous update makes layers independent
within a step, so one BLAS call and one fused kernel advance every layer at
once (a per-layer loop costs ~30 numpy calls per layer, which dominates at
the paper's sizes).  Padded units have zero weights, zero error and (masked)
zero rate, so they never influence real units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np


class DivergenceError(FloatingPointError):
    """The state became NaN or infinite."""

    def __init__(self, layer: int, step: int | None = None):
        self.layer, self.step = layer, step
        where = f" at step {step}" if step is not None else ""
        super().__init__(
            f"the network diverged{where}: layer {layer} has a non-finite prospective "
            "potential (lower the learning rate, beta or gamma, or check the input)"
        )


@dataclass
class GLEParams:
    """Stacked parameters.  ``W[l]`` is ``(out, in)``; pads are zero."""

    W: np.ndarray          # (L, N, N)
    b: np.ndarray          # (L, N)
    tau_m: np.ndarray      # (L, N)
    tau_r: np.ndarray      # (L, N)
    gamma: float
    prospective: bool
    phi_groups: tuple      # ((slice of layers, Phi), ...)
    r_mask: np.ndarray | None  # (L, 1, N) where some phi(0) != 0, else None
    n_in: int
    n_out: int
    B: np.ndarray | None = None  # (L, N, N) feedback weights laid out like W; None: B = W (exact transport)
    feedback: str = "transpose"
    error_tau: float = 0.0       # floor on the error units' relaxation time (0: tau_v = tau_r)

    @property
    def n_layers(self) -> int:
        return self.W.shape[0]


@dataclass
class GLEState:
    """Stacked dynamic state; everything starts at zero (docs/model.md#discrete-time)."""

    R: np.ndarray      # (L+1, B, N): R[0] = input x(t), R[l+1] = r_l(t)
    u: np.ndarray      # (L, B, N) somatic potentials
    v: np.ndarray      # (L, B, N) error-unit potentials
    rp: np.ndarray     # (L, B, N) phi'(u_pro(t))
    top: np.ndarray    # (L, B, N) top-down input: W_{l+1}^T e_{l+1} of the last step, or the loss term
    e: np.ndarray      # (L, B, N) prospective errors of the last step
    du: np.ndarray     # (L, B, N) du/dt of the last step
    u_pro: np.ndarray  # (L, B, N) prospective potentials of the last step
    I: np.ndarray      # (L, B, N) bottom-up input W r_{l-1} (scratch)

    @classmethod
    def zeros(cls, n_layers: int, batch: int, width: int, dtype) -> "GLEState":
        z = lambda: np.zeros((n_layers, batch, width), dtype=dtype)  # noqa: E731
        return cls(np.zeros((n_layers + 1, batch, width), dtype=dtype),
                   z(), z(), z(), z(), z(), z(), z(), z())

    @property
    def batch_size(self) -> int:
        return self.u.shape[1]


@dataclass
class GLEGrads:
    """Views into one flat gradient buffer (so an optimizer updates all at once)."""

    flat: np.ndarray   # W then b
    W: np.ndarray      # (L, N, N)
    b: np.ndarray      # (L, N)
    tau_m: np.ndarray | None  # (L, N) when time constants learn
    tau_r: np.ndarray | None = None  # (L, N) when tau_r learns


PARALLEL_MIN_SIZE = 16384  # below this, thread start-up costs more than it saves


def _errors_and_membranes_py(top, rp, v, u, I, b, tau_m, tau_r, error_tau, gamma, dt, prospective, e, du, u_pro):
    """Fused elementwise part of one step; returns the count of non-finite u_pro."""
    n_layers, batch, width = u.shape
    n_bad = 0
    for lb in nb.prange(n_layers * batch):
        l = lb // batch
        k = lb - l * batch
        for n in range(width):
            inst_e = top[l, k, n] * rp[l, k, n]
            if prospective:
                dv = (inst_e - v[l, k, n]) / max(tau_r[l, n], error_tau)
                err = v[l, k, n] + tau_m[l, n] * dv
                v[l, k, n] = v[l, k, n] + dt * dv
            else:
                err = inst_e
            e[l, k, n] = err
            d = (I[l, k, n] + b[l, n] + gamma * err - u[l, k, n]) / tau_m[l, n]
            up = u[l, k, n] + tau_r[l, n] * d
            u[l, k, n] = u[l, k, n] + dt * d
            du[l, k, n] = d
            u_pro[l, k, n] = up
            if not np.isfinite(up):
                n_bad += 1
    return n_bad


# one source, two compilations: threads pay off only for large layers/batches
_errors_and_membranes_par = nb.njit(parallel=True, cache=True)(_errors_and_membranes_py)
_errors_and_membranes_seq = nb.njit(parallel=False, cache=True)(_errors_and_membranes_py)


def errors_and_membranes_kernel(size: int):
    """The compiled kernel for state arrays of ``size`` elements (parallel only when it pays)."""
    return _errors_and_membranes_par if size >= PARALLEL_MIN_SIZE else _errors_and_membranes_seq


def gle_step(params: GLEParams, state: GLEState, x: np.ndarray, dt: float,
             out_top: np.ndarray | None = None, grads: GLEGrads | None = None) -> None:
    """Advance every layer by one Euler step of docs/model.md#discrete-time, in place.

    Parameters
    ----------
    params : GLEParams
        Weights used for the whole step (the optimizer changes them after).
    state : GLEState
        Advanced in place from ``t`` to ``t + dt``.
    x : ndarray, shape (batch, n_in)
        Network input ``x(t)``.
    dt : float
        Time step (same unit as the time constants).
    out_top : ndarray, shape (batch, n_out), optional
        Loss term for the output layer, ``beta * (-dL/dr_L)`` at ``r_L(t)``;
        ``None`` means no target (no error enters).
    grads : GLEGrads, optional
        Filled with the local gradients of this step (batch means).

    Raises
    ------
    DivergenceError
        If any prospective potential becomes non-finite (names the layer).
    """
    L = params.n_layers
    R = state.R
    R[0, :, : params.n_in] = x
    if out_top is None:
        state.top[L - 1] = 0.0
    else:
        state.top[L - 1, :, : params.n_out] = out_top
    x_in = R[:L]
    np.matmul(x_in, params.W.transpose(0, 2, 1), out=state.I)
    kernel = errors_and_membranes_kernel(state.u.size)
    n_bad = kernel(state.top, state.rp, state.v, state.u, state.I, params.b, params.tau_m, params.tau_r,
                   params.error_tau, params.gamma, dt, params.prospective, state.e, state.du, state.u_pro)
    if n_bad:
        bad = ~np.isfinite(state.u_pro).all(axis=(1, 2))
        raise DivergenceError(int(np.argmax(bad)))
    if grads is not None:
        np.matmul(state.e.transpose(0, 2, 1), x_in, out=grads.W)
        np.sum(state.e, axis=1, out=grads.b)
        np.multiply(grads.flat, -1.0 / state.batch_size, out=grads.flat)
        if grads.tau_m is not None:
            np.einsum("lbn,lbn->ln", state.e, state.du, out=grads.tau_m)
            grads.tau_m *= 1.0 / state.batch_size
        if grads.tau_r is not None:
            np.einsum("lbn,lbn->ln", state.e, state.du, out=grads.tau_r)
            grads.tau_r *= -1.0 / state.batch_size
    # error sent down for the next step, with the weights of this step
    if params.B is None:
        np.matmul(state.e[1:], params.W[1:], out=state.top[: L - 1])
    else:
        if params.feedback == "sign_symmetric":
            np.sign(params.W, out=params.B)
        np.matmul(state.e[1:], params.B[1:], out=state.top[: L - 1])
    rates = R[1:]
    for layers, phi in params.phi_groups:
        phi.fn(state.u_pro[layers], rates[layers])
        phi.prime(state.u_pro[layers], rates[layers], state.rp[layers])
    if params.r_mask is not None:
        rates *= params.r_mask


def kolen_pollack_step(W: np.ndarray, B: np.ndarray, W_before: np.ndarray, decay: float) -> None:
    r"""Kolen-Pollack plasticity (Akrout et al. 2019), in place, after an update of ``W``.

    ``B`` (laid out like ``W``, so ``B^T`` carries errors down) receives the same
    local update ``W - W_before`` that ``W`` just received (the transposed update
    of the paper's rule), then both decay by ``1 - decay`` with
    ``decay = lr * lambda``.  Hence :math:`B - W` shrinks by :math:`1 - \eta\lambda`
    every step, whatever the optimizer.
    """
    B += W
    B -= W_before
    keep = 1.0 - decay
    W *= keep
    B *= keep
