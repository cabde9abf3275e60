"""Datasets: generated offline, shipped small, or read from a folder the user names."""
from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Where generated datasets and features are cached: ``$CORTICAL_GLE_CACHE`` or ``~/.cache/cortical_gle``."""
    return Path(os.environ.get("CORTICAL_GLE_CACHE", Path.home() / ".cache" / "cortical_gle"))
