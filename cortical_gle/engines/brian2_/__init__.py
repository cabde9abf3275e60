"""The Brian2 engine: GLE as a cortical microcircuit of Brian2 groups (``models/brian2/gle_rate.py``).

``build(spec, dt, target=...)`` returns a :class:`Brian2GLENetwork` with the numpy
engine's API.  ``target`` chooses Brian2's code generation:

``'cython'`` (default)
    Runtime mode, the update compiled to C through Cython (needs a C++ compiler and the
    ``cython`` package); compiled code is cached per user (``~/.cython/brian_extensions``),
    so only the first network of a structure pays the compilation.
``'numpy'``
    Runtime mode, vectorised numpy: no compiler, slower per step.
``'cpp_standalone'``
    The circuit compiled into one C++ program per structure and mode (learning on/off,
    what is recorded), cached per user; runs of any length continue from the state
    exactly (:mod:`.standalone`).  The first run of a structure compiles (about a minute
    for three layers); afterwards the fastest target for large networks.

A protocol chooses it with ``engine_options.target`` (``cortical-gle run ... --engine brian2
--set engine_options.target=numpy``); without that, the environment variable
``CORTICAL_GLE_BRIAN2_TARGET`` sets the default.  An explicit ``target=`` wins over both.
"""
from __future__ import annotations

import os

from ..base import Engine
from .network import Brian2GLENetwork, check_spec

TARGETS = ("cython", "numpy", "cpp_standalone")
DEFAULT_TARGET = "cython"


#: targets Brian2 has that this engine does not offer, and why
REFUSED_TARGETS = {
    "cuda_standalone": "Brian2CUDA is not installed here; 'cpp_standalone' is the compiled standalone target",
}


def check_target(target: str) -> str:
    """The target if Brian2 can use it here; otherwise an error saying what to install or use instead."""
    if target in REFUSED_TARGETS:
        raise ValueError(f"Brian2 target {target!r} is not available on the brian2 engine: {REFUSED_TARGETS[target]}")
    if target not in TARGETS:
        raise ValueError(f"unknown Brian2 target {target!r}; available targets: {', '.join(TARGETS)}")
    if target == "cython":
        from brian2.codegen.runtime.cython_rt import CythonCodeObject
        if not CythonCodeObject.is_available():
            raise RuntimeError(
                "Brian2 target 'cython' is not available here: it needs a C++ compiler and the cython package "
                "(Debian: apt-get install g++; pip install cython). Use target='numpy' (or "
                "CORTICAL_GLE_BRIAN2_TARGET=numpy) to run without a compiler")
    if target == "cpp_standalone":
        from .standalone import check_compiler
        check_compiler()
    return target


class Brian2Engine(Engine):
    """Builds :class:`Brian2GLENetwork` objects from a :class:`~cortical_gle.spec.NetworkSpec`."""

    name = "brian2"
    OPTIONS = {"target": f"Brian2's code generation, one of {', '.join(TARGETS)}"}

    @classmethod
    def check_options(cls, options: dict) -> dict:
        options = super().check_options(options)
        if "target" in options:
            try:
                check_target(options["target"])
            except (ValueError, RuntimeError) as err:
                raise type(err)(f"engine_options.target: {err}") from None
        return options

    def _target(self, target: str | None) -> str | None:
        """An explicit ``target``, else the protocol's ``engine_options.target`` (``None``: neither)."""
        return target if target is not None else self.options.get("target")

    def build(self, spec, dt, target: str | None = None, **kwargs) -> Brian2GLENetwork:
        """A network for ``spec`` with time step ``dt``; ``target`` as in the module docstring.

        ``spec.spiking`` builds the spiking microcircuit (:mod:`.spiking`, docs/brian2-spiking.md).
        """
        target = check_target(self._target(target) or os.environ.get("CORTICAL_GLE_BRIAN2_TARGET", DEFAULT_TARGET))
        if getattr(spec, "spiking", False):
            from .spiking import build_spiking
            return build_spiking(spec, dt, target=target, **kwargs)
        check_spec(spec)
        if target == "cpp_standalone":
            from .standalone import StandaloneGLENetwork
            return StandaloneGLENetwork(spec, dt, **kwargs)
        return Brian2GLENetwork(spec, dt, target=target, **kwargs)

    def load(self, path, target: str | None = None):
        from ...io import read_npz

        target = self._target(target)
        options = {} if target is None else {"target": check_target(target)}
        meta = read_npz(path, "cortical_gle Brian2 network file")[1]
        if meta.get("engine") == "brian2-spiking":
            from .spiking import SpikingBrian2Network
            return SpikingBrian2Network.load(path, **options)
        if options.get("target", meta.get("target")) == "cpp_standalone":
            from .standalone import StandaloneGLENetwork
            check_target("cpp_standalone")
            return StandaloneGLENetwork.load(path)
        return Brian2GLENetwork.load(path, target=options.get("target"))


__all__ = ["Brian2Engine", "Brian2GLENetwork", "TARGETS", "DEFAULT_TARGET", "check_target"]
