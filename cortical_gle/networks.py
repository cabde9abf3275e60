"""Network descriptions of the paper's experiments (docs/model.md#tasks-and-published-numbers)."""
from __future__ import annotations

import numpy as np

from .spec import LayerSpec, NetworkSpec


def lagged_mlp_network(n_in: int, n_out: int, n_hidden: int, n_le: int, n_li: int, tau: float, dt: float,
                       beta: float = 1.0, li_tau_r: float | None = None, **spec_kwargs) -> NetworkSpec:
    """The paper's end-to-end GLE classifier: ``n_hidden`` layers of ``n_le`` LE + ``n_li`` LI units.

    LE units have ``tau_m = tau_r = tau``; LI units ``tau_r = dt`` (or ``li_tau_r``) with half of
    them ``tau_m = tau / 2`` and half ``tau_m = tau``.  As in the paper's code
    the first layer (input to units) is linear, the other hidden layers tanh,
    the output linear with cross-entropy and ``tau_m = tau_r = tau``;
    prospective errors on.  ``spec_kwargs`` (e.g. ``feedback``) go to :class:`NetworkSpec`.
    """
    half = n_li // 2
    tau_m = np.concatenate([np.full(n_le, tau), np.full(half, tau / 2), np.full(n_li - half, tau)])
    tau_r = np.concatenate([np.full(n_le, tau), np.full(n_li, dt if li_tau_r is None else li_tau_r)])
    hidden = tuple(LayerSpec(n_le + n_li, tau_m, tau_r, "linear" if i == 0 else "tanh") for i in range(n_hidden))
    out = LayerSpec(n_out, tau, tau, "linear")
    return NetworkSpec(n_in, hidden + (out,), beta=beta, loss="cross_entropy", prospective_errors=True,
                       **spec_kwargs)


def mnist1d_network(n_hidden: int = 6, n_le: int = 17, n_li: int = 36, tau: float = 1.2, dt: float = 0.2,
                    n_in: int = 1, n_out: int = 10, beta: float = 1.0) -> NetworkSpec:
    """The paper's MNIST-1D network: 6 layers of 17 LE + 36 LI units, tau = 1.2, dt = 0.2 (14,956 parameters)."""
    return lagged_mlp_network(n_in, n_out, n_hidden, n_le, n_li, tau, dt, beta)
