"""Named transfer functions ``phi`` and their derivatives.

Each engine looks a nonlinearity up by name, so a network description stays a
plain string and every engine applies the same function.  ``fn`` and ``prime``
write into ``out`` to avoid allocations on the numpy engine's hot path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Phi:
    """A transfer function ``r = phi(u)`` with its derivative.

    Attributes
    ----------
    name : str
        Registry name (used in protocol files and by every engine).
    fn : callable
        ``fn(x, out)`` writes ``phi(x)`` into ``out``.
    prime : callable
        ``prime(x, r, out)`` writes ``phi'(x)`` into ``out``; ``r = phi(x)``
        is passed so that tanh and sigmoid reuse it.
    zero_at_zero : bool
        ``phi(0) == 0``; padded (unused) units of the stacked numpy layout
        then stay silent without masking.
    expr : str
        The function as a Brian2/NESTML-style expression of ``x``.
    """

    name: str
    fn: Callable
    prime: Callable
    zero_at_zero: bool
    expr: str

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        out = np.empty_like(x)
        self.fn(x, out)
        return out

    def derivative(self, x):
        x = np.asarray(x, dtype=float)
        r = self(x)
        out = np.empty_like(x)
        self.prime(x, r, out)
        return out


def _tanh_prime(x, r, out):
    np.multiply(r, r, out=out)
    np.subtract(1.0, out, out=out)


def _linear(x, out):
    out[...] = x


def _ones(x, r, out):
    out[...] = 1.0


def _sigmoid(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(1.0, out, out=out)
    np.reciprocal(out, out=out)


def _sigmoid_prime(x, r, out):
    np.subtract(1.0, r, out=out)
    np.multiply(r, out, out=out)


def _softplus(x, out):
    np.logaddexp(0.0, x, out=out)


def _softplus_prime(x, r, out):
    _sigmoid(x, out)


def _relu(x, out):
    np.maximum(x, 0.0, out=out)


def _relu_prime(x, r, out):
    np.greater(x, 0.0, out=out)


PHIS: dict[str, Phi] = {
    p.name: p
    for p in (
        Phi("tanh", lambda x, out: np.tanh(x, out=out), _tanh_prime, True, "tanh(x)"),
        Phi("linear", _linear, _ones, True, "x"),
        Phi("sigmoid", _sigmoid, _sigmoid_prime, False, "1/(1+exp(-x))"),
        Phi("softplus", _softplus, _softplus_prime, False, "log(1+exp(x))"),
        Phi("relu", _relu, _relu_prime, True, "x*(x>0)"),
    )
}


def get_phi(name: str) -> Phi:
    """Return the transfer function registered as ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.
    """
    try:
        return PHIS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown phi {name!r}; known transfer functions: {', '.join(sorted(PHIS))}"
        ) from None
