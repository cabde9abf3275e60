"""Input signals and teacher targets for the teacher-student tasks."""
from __future__ import annotations

import numpy as np


def ornstein_uhlenbeck(n_steps: int, batch: int, n: int, dt: float, tau: float = 1.0, sigma: float = 1.0,
                       rng: np.random.Generator | None = None) -> np.ndarray:
    r"""Stationary Ornstein-Uhlenbeck process, shape (n_steps, batch, n), exact discretisation.

    .. math:: x_{t+1} = a x_t + \sigma\sqrt{1-a^2}\,\xi_t, \quad a = e^{-dt/\tau}

    so the stationary standard deviation is ``sigma`` and the correlation time ``tau``.
    """
    if not (dt > 0 and tau > 0 and sigma >= 0):
        raise ValueError(f"need dt > 0, tau > 0 and sigma >= 0, got dt={dt}, tau={tau}, sigma={sigma}")
    rng = np.random.default_rng() if rng is None else rng
    a = np.exp(-dt / tau)
    noise = rng.standard_normal((n_steps, batch, n)) * (sigma * np.sqrt(1 - a * a))
    x = np.empty((n_steps, batch, n))
    x[0] = sigma * rng.standard_normal((batch, n))
    for t in range(1, n_steps):
        x[t] = a * x[t - 1] + noise[t]
    return x


def teacher_targets(teacher, x) -> np.ndarray:
    """The teacher's output aligned with the student's loss convention.

    The loss at step ``t`` compares ``y(t)`` with ``r_L(t)``, the output the
    *previous* step produced; so ``y(t)`` is the teacher's output before step
    ``t`` (zero at ``t = 0``, both start from rest).
    """
    out = teacher.run(x, record=("r_out",))["r_out"]
    return np.concatenate([np.zeros_like(out[:1]), out[:-1]])
