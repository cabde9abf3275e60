"""The NEST engine: GLE neurons and synapses compiled into NEST (``models/nest/``).

``build`` returns a :class:`NestGLENetwork` with the numpy engine's API (or, for a
spec with ``spiking = True``, a :class:`SpikingNestNetwork` of NESTML neurons); the
first use compiles the modules into the per-user cache (``cortical-gle build-nest``).
"""
from ..base import Engine
from .build import NestBuildError, build_nest
from .network import NestGLENetwork
from .spiking import SpikingNestNetwork


class NestEngine(Engine):
    """Builds :class:`NestGLENetwork` objects from a :class:`~cortical_gle.spec.NetworkSpec`."""

    name = "nest"

    def build(self, spec, dt, **kwargs):
        spec.require_exact_feedback(self.name)
        spec.require_paper_error_units(self.name)
        if spec.spiking:
            return SpikingNestNetwork(spec, dt, **kwargs)
        return NestGLENetwork(spec, dt, **kwargs)

    def load(self, path) -> NestGLENetwork:
        return NestGLENetwork.load(path)


__all__ = ["NestEngine", "NestGLENetwork", "SpikingNestNetwork", "NestBuildError", "build_nest"]
