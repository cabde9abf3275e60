"""Engine registry: ``get_engine(name)`` returns an object with ``build(spec, dt)``."""
from __future__ import annotations

import importlib

_REGISTRY = {
    "numpy": ("cortical_gle.engines.numpy_", "NumpyEngine"),
    "nest": ("cortical_gle.engines.nest_", "NestEngine"),
    "brian2": ("cortical_gle.engines.brian2_", "Brian2Engine"),
}


def available_engines() -> list:
    return sorted(_REGISTRY)


def get_engine(name: str):
    """Look an engine up by name; unknown names list the known ones."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; available engines: {', '.join(available_engines())}") from None
    return getattr(importlib.import_module(module), cls)()
