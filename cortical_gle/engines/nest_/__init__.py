"""The NEST engine: GLE neurons and synapses compiled into NEST (``models/nest/``).

``build`` returns a :class:`NestGLENetwork` with the numpy engine's API; the
first use compiles the module into the per-user cache (``cortical-gle build-nest``).
"""
from .build import NestBuildError, build_nest
from .network import NestGLENetwork


class NestEngine:
    """Builds :class:`NestGLENetwork` objects from a :class:`~cortical_gle.spec.NetworkSpec`."""

    name = "nest"

    def build(self, spec, dt, **kwargs) -> NestGLENetwork:
        spec.require_exact_feedback(self.name)
        return NestGLENetwork(spec, dt, **kwargs)

    def load(self, path) -> NestGLENetwork:
        return NestGLENetwork.load(path)


__all__ = ["NestEngine", "NestGLENetwork", "NestBuildError", "build_nest"]
