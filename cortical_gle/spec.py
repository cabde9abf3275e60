"""Engine-independent description of a layered GLE network (docs/model.md#continuous-model).

A :class:`NetworkSpec` says *what* the network is (sizes, per-neuron time
constants, transfer functions, nudging ``gamma``, loss scale ``beta``, whether
errors are prospective); each engine's ``build`` turns it into something that
runs.  Time constants are quantities, or plain numbers in ``time_unit``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import quantities as pq

from .phi import get_phi
from .units import to_magnitude

LOSSES = ("mse", "cross_entropy")
#: top-down pathways (``feedback``) and where each hypothesis comes from (docs/hypotheses.md)
FEEDBACK_REFERENCES = {
    "transpose": "exact weight transport, B = W^T (Ellenberger et al. 2026)",
    "random": "fixed random feedback, feedback alignment (Lillicrap et al. 2016, Nat. Commun. 7:13276)",
    "sign_symmetric": "B = sign(W)^T (Liao, Leibo & Poggio 2016, AAAI)",
    "kolen_pollack": "B learns W's local update, both decay (Akrout et al. 2019, NeurIPS; Kolen & Pollack 1994)",
}
FEEDBACKS = tuple(FEEDBACK_REFERENCES)


def _as_tau(value, size: int, name: str, time_unit) -> np.ndarray:
    tau = np.asarray(to_magnitude(value, time_unit, name), dtype=float)
    if tau.ndim == 0:
        tau = np.full(size, float(tau))
    if tau.shape != (size,):
        raise ValueError(f"{name} must be a scalar or have one value per neuron ({size}), got shape {tau.shape}")
    if not np.all(np.isfinite(tau)):
        raise ValueError(f"{name} must be finite, got {tau[~np.isfinite(tau)][0]}")
    if np.any(tau <= 0):
        raise ValueError(f"{name} must be positive, got {tau[tau <= 0][0]}")
    tau.setflags(write=False)
    return tau


@dataclass(frozen=True)
class LayerSpec:
    """One layer of GLE neurons.

    Parameters
    ----------
    size : int
        Number of neurons.
    tau_m, tau_r : quantity, float or array (per neuron)
        Membrane and prospective time constants (plain numbers are in the
        network's ``time_unit``).
    phi : str
        Name of the transfer function (see :mod:`cortical_gle.phi`).
    bias : bool
        Whether the layer has a learnable bias.
    """

    size: int
    tau_m: object
    tau_r: object
    phi: str = "tanh"
    bias: bool = True
    time_unit: object = field(default=pq.ms, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"layer size must be a positive integer, got {self.size!r}")
        get_phi(self.phi)
        object.__setattr__(self, "tau_m", _as_tau(self.tau_m, self.size, "tau_m", self.time_unit))
        object.__setattr__(self, "tau_r", _as_tau(self.tau_r, self.size, "tau_r", self.time_unit))


@dataclass(frozen=True)
class NetworkSpec:
    """A layered GLE network (input, hidden layers, output layer).

    Parameters
    ----------
    n_in : int
        Input dimension.
    layers : sequence of LayerSpec
        Hidden layers then the output layer.
    gamma : float
        Nudging strength of the soma by its own error (docs/model.md#continuous-model).
    beta : float
        Scale of the output error (loss derivative).
    prospective_errors : bool
        Error units with dynamics (``e = v + tau_m dv/dt``) or instantaneous.
    loss : {'mse', 'cross_entropy'}
    feedback : {'transpose', 'random', 'sign_symmetric', 'kolen_pollack'}
        The weights ``B_l`` that carry layer ``l``'s error down, ``top_{l-1} = B_l^T e_l``
        (stored like ``W_l``, shape ``(n_l, n_{l-1})``): ``transpose`` is exact weight
        transport ``B = W`` (the paper); ``random`` a fixed random ``B`` (feedback
        alignment, Lillicrap et al. 2016); ``sign_symmetric`` ``B = sign(W)`` (Liao et al.
        2016); ``kolen_pollack`` a random ``B`` that receives ``W``'s local update while
        both decay (Akrout et al. 2019), so that ``B - W`` shrinks geometrically.
        Only the numpy engine implements the alternatives
        (:meth:`require_exact_feedback` lets other engines refuse by name).
    feedback_decay : float
        Weight decay ``lambda`` of the Kolen-Pollack rule (per unit of learning rate:
        each step multiplies ``W`` and ``B`` by ``1 - lr lambda``); unused otherwise.
    error_tau : quantity, float or None
        Floor on the error units' relaxation time: each error unit relaxes with
        ``tau_v = max(tau_r, error_tau)`` instead of its neuron's ``tau_r`` (None: the paper's
        ``tau_v = tau_r``).  It bounds the gain of an LI unit's error unit for content that
        flips sign every step from ``(2 tau_m - dt) / (2 tau_r - dt)`` to
        ``(2 tau_m - dt) / (2 tau_v - dt)`` and adds a lag ``tau_v - tau_r`` to its error
        (docs/model.md, "Where it is approximate").  Only the numpy engine implements it
        (:meth:`require_paper_error_units`).
    time_unit : quantity
        Unit in which plain-number time constants are read.
    spiking : bool
        Spiking variant (docs/nest.md#spiking-variant): neurons emit stochastic spikes at
        ``r_max * phi(u_pro)`` and read spike traces; only the NEST engine runs it.
    r_max : float
        Maximal rate ``psi`` of the spiking variant in Hz (``phi = 1``); unused when rate-based.
    """

    n_in: int
    layers: tuple
    gamma: float = 0.0
    beta: float = 1.0
    prospective_errors: bool = True
    loss: str = "mse"
    feedback: str = "transpose"
    feedback_decay: float = 0.1
    error_tau: object = None
    time_unit: object = pq.ms
    spiking: bool = False
    r_max: float = 200.0

    def __post_init__(self):
        if not isinstance(self.n_in, (int, np.integer)) or self.n_in < 1:
            raise ValueError(f"n_in must be a positive integer, got {self.n_in!r}")
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LayerSpec):
                raise TypeError(f"layers[{i}] must be a LayerSpec, got {type(layer).__name__}")
        object.__setattr__(self, "layers", layers)
        for name in ("gamma", "beta"):
            val = getattr(self, name)
            if not np.isfinite(val):
                raise ValueError(f"{name} must be finite, got {val}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; known losses: {', '.join(LOSSES)}")
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"unknown feedback hypothesis {self.feedback!r}; known: {', '.join(FEEDBACKS)}")
        if not (np.isfinite(self.feedback_decay) and self.feedback_decay >= 0):
            raise ValueError(f"feedback_decay must be finite and >= 0, got {self.feedback_decay}")
        if self.error_tau is not None:
            object.__setattr__(self, "error_tau", float(_as_tau(self.error_tau, 1, "error_tau", self.time_unit)[0]))
        if not isinstance(self.spiking, (bool, np.bool_)):
            raise ValueError(f"spiking must be true or false, got {self.spiking!r}")
        if isinstance(self.r_max, (bool, np.bool_)) or not isinstance(self.r_max, (int, float, np.number)) \
                or not (np.isfinite(self.r_max) and self.r_max > 0):
            raise ValueError(f"r_max (maximal rate of the spiking variant, Hz) must be a positive number, "
                             f"got {self.r_max!r}")

    def require_rate_based(self, engine: str) -> None:
        """For engines without a spiking variant: refuse ``spiking = True`` by name."""
        if self.spiking:
            raise ValueError(f"the {engine} engine is rate-based; spiking: true (stochastic spikes at r_max * "
                             "phi(u_pro)) runs on the nest engine")

    def require_exact_feedback(self, engine: str) -> None:
        """For engines that implement only ``feedback = 'transpose'``: refuse the others by name."""
        if self.feedback != "transpose":
            raise ValueError(f"the {engine} engine implements only feedback 'transpose' (exact weight transport); "
                             f"feedback {self.feedback!r} ({FEEDBACK_REFERENCES[self.feedback]}) runs on the "
                             "numpy engine")

    def require_paper_error_units(self, engine: str) -> None:
        """For engines whose error units relax with ``tau_r``: refuse ``error_tau`` by name."""
        if self.error_tau is not None:
            raise ValueError(f"the {engine} engine's error units relax with tau_r (the paper's); error_tau "
                             f"= {self.error_tau:g} (a floor on that relaxation time) runs on the numpy engine")

    # -- convenience -------------------------------------------------------
    @classmethod
    def feedforward(cls, sizes: Sequence[int], tau_m, tau_r, phi="tanh", output_phi="linear",
                    time_unit=pq.ms, bias=True, **kwargs) -> "NetworkSpec":
        """Network with layer sizes ``sizes = [n_in, n_1, ..., n_out]``.

        ``tau_m`` and ``tau_r`` are a value for every neuron, or a list with one
        entry (scalar or per-neuron array) per layer.
        """
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError("sizes needs the input size and at least one layer size")
        n_layers = len(sizes) - 1

        def per_layer(value, name):
            if isinstance(value, (list, tuple)) and len(value) == n_layers:
                return list(value)
            if isinstance(value, (list, tuple)):
                raise ValueError(f"{name} has {len(value)} entries for {n_layers} layers")
            return [value] * n_layers

        tms, trs = per_layer(tau_m, "tau_m"), per_layer(tau_r, "tau_r")
        layers = tuple(
            LayerSpec(int(n), tms[i], trs[i], output_phi if i == n_layers - 1 else phi, bias, time_unit)
            for i, n in enumerate(sizes[1:])
        )
        return cls(int(sizes[0]), layers, time_unit=time_unit, **kwargs)

    @property
    def sizes(self) -> list:
        return [self.n_in] + [layer.size for layer in self.layers]

    @property
    def n_out(self) -> int:
        return self.layers[-1].size

    def check_dt(self, dt: float) -> None:
        """Reject ``dt`` larger than any time constant (docs/model.md#discrete-time)."""
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be positive and finite, got {dt}")
        taus = [(f"{name} of layer {i} neuron {{j}}", getattr(layer, name))
                for i, layer in enumerate(self.layers) for name in ("tau_m", "tau_r")]
        if self.error_tau is not None:
            taus.append(("error_tau", np.array([self.error_tau])))
        for what, tau in taus:
            if np.any(tau < dt * (1 - 1e-12)):
                j = int(np.argmin(tau))
                raise ValueError(f"{what.format(j=j)} is {tau[j]:g}, below dt = {dt:g} "
                                 f"({self.time_unit.dimensionality.string}): forward Euler needs dt <= every tau")

    def to_dict(self) -> dict:
        unit = self.time_unit.dimensionality.string
        return {
            "n_in": self.n_in,
            "time_unit": unit,
            "gamma": self.gamma,
            "beta": self.beta,
            "prospective_errors": self.prospective_errors,
            "loss": self.loss,
            "feedback": self.feedback,
            "feedback_decay": self.feedback_decay,
            "spiking": bool(self.spiking),
            "r_max": float(self.r_max),
            "layers": [
                {"size": l.size, "tau_m": l.tau_m.tolist(), "tau_r": l.tau_r.tolist(), "phi": l.phi, "bias": l.bias}
                for l in self.layers
            ],
            **({} if self.error_tau is None else {"error_tau": self.error_tau}),   # absent: the paper's
        }

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkSpec":
        unit = pq.Quantity(1.0, d.get("time_unit", "ms"))
        layers = tuple(
            LayerSpec(l["size"], np.asarray(l["tau_m"]), np.asarray(l["tau_r"]), l["phi"], l.get("bias", True), unit)
            for l in d["layers"]
        )
        kw = {k: d[k] for k in ("gamma", "beta", "prospective_errors", "loss", "feedback",
                                       "feedback_decay", "error_tau", "spiking", "r_max") if k in d}
        return cls(d["n_in"], layers, time_unit=unit, **kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
