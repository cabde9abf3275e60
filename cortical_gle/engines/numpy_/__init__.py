"""The numpy engine: the project's reference implementation of GLE."""
from ..base import Engine
from .dynamics import DivergenceError, GLEParams, GLEState, gle_step
from .network import GLENetwork


class NumpyEngine(Engine):
    """Builds :class:`GLENetwork` objects from a :class:`~cortical_gle.spec.NetworkSpec`."""

    name = "numpy"

    def build(self, spec, dt, **kwargs) -> GLENetwork:
        """A network for ``spec`` with time step ``dt`` (a quantity, a string such as ``"10 us"``, or a
        plain number in ``spec.time_unit``; see :class:`GLENetwork`)."""
        return GLENetwork(spec, dt, **kwargs)

    def load(self, path) -> GLENetwork:
        return GLENetwork.load(path)


__all__ = ["NumpyEngine", "GLENetwork", "GLEParams", "GLEState", "gle_step", "DivergenceError"]
