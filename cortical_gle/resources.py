"""Where the shipped model and protocol files are.

In a wheel they sit inside the package (``cortical_gle/_data/``); in a source
checkout they are the top-level ``protocols/`` and ``models/`` folders.
"""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``protocols`` or ``models``: the installed copy, else the checkout's folder."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name!r} folder (looked in {_PKG / '_data'} and {_PKG.parent})")
