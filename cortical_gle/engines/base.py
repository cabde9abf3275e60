"""The engine contract: what every engine's ``build`` returns, written once.

Tasks talk only to this contract (``get_engine(name).build(...)`` and the
methods below), never to an engine's internals; ``tests/cross_engine/`` checks
it on every registered engine, so a new engine joins without new tests.

An engine is an object with

``name``
    Its registry name (``"numpy"``, ``"nest"``, ...).
``build(spec, dt, *, dtype=float64, seed=None, weights=None, biases=None, **engine_options)``
    A :class:`GLENetworkContract` for the :class:`~cortical_gle.spec.NetworkSpec`.
    ``dt`` is a quantity or a plain number in ``spec.time_unit``; it must not
    exceed any time constant.  ``weights[l]`` has shape ``(n_l, n_{l-1})``;
    ``seed`` draws the default initialisation, which is the same on every
    engine (:func:`cortical_gle.engines.numpy_.network.default_weights`).
    Engine-specific settings (a code-generation target, threads) are keyword
    arguments; an unknown one is an error that names it.  A protocol's
    ``engine_options`` (:class:`Engine`) are their defaults for a run.
``load(path)``
    A network saved with :meth:`GLENetworkContract.save` on this engine.

Time convention (``docs/model.md``, discrete update): all layers advance
synchronously from the previous step's values.  ``run`` returns arrays with time
first; entry ``t`` is the value *after* step ``t``; ``loss[t]`` compares the
target ``y(t)`` with ``r_L(t)``, the output the previous step produced (so
``loss[0]`` is the loss of the resting output).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

#: what ``run(record=...)`` accepts, with shapes (``T`` steps, ``L`` layers, ``B`` batch, ``N`` widest layer):
RECORDABLE = {
    "r_out": "(T, B, n_out) output rates r_L",
    "r": "(T, L, B, N) rates phi(u_pro) per layer, zero-padded to the widest layer",
    "u": "(T, L, B, N) somatic potentials",
    "u_pro": "(T, L, B, N) prospective potentials u + tau_r du/dt",
    "v": "(T, L, B, N) error-unit potentials",
    "e": "(T, L, B, N) prospective errors",
    "loss": "(T,) batch-mean loss of r_L(t) against target[t] (NaN without a target)",
}


@runtime_checkable
class GLENetworkContract(Protocol):
    """A built GLE network, whatever the engine.

    Attributes
    ----------
    spec : NetworkSpec
        The description it was built from.
    dt : float
        Time step in ``spec.time_unit``.
    weights, biases, tau_m : list of ndarray
        Current parameters per layer (``W_l`` is ``(n_l, n_{l-1})``).
    steps_done : int
        Euler steps simulated since construction (or as saved).
    extra : dict
        After :meth:`load`: the ``extra`` stored by :meth:`save`.
    """

    spec: object
    dt: float
    steps_done: int

    @property
    def weights(self) -> list: ...

    @property
    def biases(self) -> list: ...

    @property
    def tau_m(self) -> list: ...

    @property
    def output(self) -> np.ndarray:
        """``r_L(t)`` now, shape ``(batch, n_out)``."""

    def set_weights(self, weights, biases=None) -> None:
        """Replace ``W_l`` (and ``b_l``); shapes and finiteness are checked."""

    def configure_learning(self, optimizer: str = "adam", lr: float = 1e-3, learn_tau: bool = False,
                           tau_optimizer: str = "sgd", lr_tau: float = 1e-3, tau_min: float | None = None,
                           learn_tau_r: bool = False, **opt_kwargs) -> None:
        """Per-step ``'sgd'`` or ``'adam'`` on W and b; optionally learn ``tau_m`` (bounded by ``tau_min``)
        and ``tau_r`` (docs/hypotheses.md; an engine without that rule refuses ``learn_tau_r=True`` by name)."""

    def reset(self, batch_size: int = 1) -> None:
        """All dynamic state to zero for a batch of ``batch_size``; parameters are kept."""

    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True) -> dict:
        """Advance through ``x (T, B, n_in)``; returns the recorded arrays (see :data:`RECORDABLE`).

        ``target`` is ``(T, B, n_out)`` floats (MSE) or ``(T, B)`` labels (cross-entropy);
        ``learn=True`` updates the parameters after every step (the batch-mean
        gradient; an engine that cannot learn on a batch refuses ``B > 1`` with an
        error that says so); ``reset=False`` continues from the current state.  A state that goes
        non-finite raises ``DivergenceError`` (engines/numpy_/dynamics.py); the numpy and brian2
        engines name the step (counted since construction) and the lowest layer whose ``u_pro`` was
        first non-finite.
        """

    def state_snapshot(self):
        """An opaque copy of the dynamic state, for :meth:`restore_state`."""

    def restore_state(self, snapshot) -> None:
        """Return to a snapshot (parameters and optimizer untouched)."""

    def silence_errors(self) -> None:
        """Zero the error units: the network as it is without a teacher."""

    def save(self, path, extra: dict | None = None) -> None:
        """Spec, parameters, state and optimizer to one file, atomically (``extra``: JSON progress).

        An engine whose files hold no dynamic state says so with a class
        attribute ``saves_state = False`` (a loaded network then starts at rest).
        Methods an engine cannot offer yet raise ``NotImplementedError`` naming why.
        """


class Engine:
    """What every engine class shares: its options, the ``engine_options`` of a protocol.

    ``OPTIONS`` maps each option an engine knows to what it sets.  ``get_engine(name)`` hands the
    options in force (:func:`cortical_gle.engines.engine_options`) to the constructor; ``build`` and
    ``load`` take them as defaults under their explicit keyword arguments.
    """

    name = ""
    #: option name: what it sets (none by default: any option is an error naming it)
    OPTIONS: dict = {}

    def __init__(self, **options):
        self.options = self.check_option_names(options)

    @classmethod
    def check_option_names(cls, options: dict) -> dict:
        unknown = [k for k in options if k not in cls.OPTIONS]
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in cls.OPTIONS.items()) or "none"
            raise ValueError(f"engine_options: the {cls.name} engine has no option "
                             f"{', '.join(map(repr, unknown))}; its options: {known}")
        return dict(options)

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """``options`` if the engine knows every name and value, else an error naming the first bad one.

        Engines with options extend this to check the values (before anything runs).
        """
        return cls.check_option_names(options)
