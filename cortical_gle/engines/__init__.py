"""Engine registry: ``get_engine(name)`` returns an object with ``build(spec, dt)`` and ``load(path)``.

Engine options (a protocol's ``engine_options``, e.g. ``--set engine_options.target=numpy`` for
Brian2's code generation) are in force inside an :func:`engine_options` block: there,
``get_engine(name)`` hands them to the engine, whose ``build``/``load`` use them as defaults under
explicit keyword arguments, so tasks call the contract the same way with and without options.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from contextvars import ContextVar

_REGISTRY = {
    "numpy": ("cortical_gle.engines.numpy_", "NumpyEngine"),
    "nest": ("cortical_gle.engines.nest_", "NestEngine"),
    "brian2": ("cortical_gle.engines.brian2_", "Brian2Engine"),
}


def available_engines() -> list:
    return sorted(_REGISTRY)


#: {engine name: options} in force; a context variable, so runs in other threads do not see them
_OPTIONS: ContextVar[dict] = ContextVar("cortical_gle_engine_options", default={})


def engine_class(name: str):
    """The engine class registered as ``name``; unknown names list the known ones."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; available engines: {', '.join(available_engines())}") from None
    return getattr(importlib.import_module(module), cls)


def get_engine(name: str):
    """The engine ``name``, with the options of an enclosing :func:`engine_options` block for it."""
    return engine_class(name)(**_OPTIONS.get().get(name, {}))


@contextmanager
def engine_options(name: str, **options):
    """Within the block, ``get_engine(name)`` hands ``options`` to the engine; afterwards (also after an
    error) the options in force before apply again.  Options the engine does not know, or values it
    cannot use, are an error naming them, raised on entry.
    """
    options = engine_class(name).check_options(options)
    token = _OPTIONS.set({**_OPTIONS.get(), name: options})
    try:
        yield options
    finally:
        _OPTIONS.reset(token)
