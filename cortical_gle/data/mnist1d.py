"""MNIST-1D (Greydanus & Kobak 2020) generated offline by the ``mnist1d`` package, cached to a file.

A sequence spans 72 time units.  As in the paper's code, ``mnist1d`` generates
it directly at 360 points (``final_seq_length = 360``), one per Euler step at
dt = 0.2; 4,000 training and 1,000 test sequences.  (:func:`as_steps` can
instead hold each point for ``upsample`` steps, e.g. 72 points x 5: a coarser
input than the paper's.)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..io import atomic_savez
from . import default_cache_dir


def load_mnist1d(final_seq_length: int = 360, num_samples: int = 5000, train_split: float = 0.8, seed: int = 42,
                 cache_dir=None) -> dict:
    """Return ``x`` (n_train, L), ``y``, ``x_test``, ``y_test`` (float64 / int64).

    Generated with ``mnist1d.data.make_dataset`` (no download) and cached under
    ``cache_dir`` keyed by the settings.

    Raises
    ------
    ValueError
        If the cache file exists but cannot be read (names the file).
    """
    args = {"final_seq_length": int(final_seq_length), "num_samples": int(num_samples),
            "train_split": float(train_split), "seed": int(seed)}
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir or default_cache_dir()) / f"mnist1d_{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except Exception as err:  # noqa: BLE001 - any unreadable cache gets the same clear message
            raise ValueError(f"MNIST-1D cache {path} is corrupt ({type(err).__name__}: {err}); "
                             "delete it and it will be regenerated") from None
        _check(data, path)
        return data
    from mnist1d.data import get_dataset_args, make_dataset

    a = get_dataset_args(as_dict=False)
    for k, v in args.items():
        setattr(a, k, v)
    raw = make_dataset(a)
    data = {"x": np.asarray(raw["x"], float), "y": np.asarray(raw["y"], np.int64),
            "x_test": np.asarray(raw["x_test"], float), "y_test": np.asarray(raw["y_test"], np.int64)}
    _check(data, path)
    atomic_savez(path, data)
    return data


def _check(data: dict, path) -> None:
    for k in ("x", "x_test"):
        if data[k].ndim != 2 or not np.all(np.isfinite(data[k])):
            raise ValueError(f"MNIST-1D data {path}: {k} must be a finite 2-D array, got shape {data[k].shape}")
    for k, xk in (("y", "x"), ("y_test", "x_test")):
        if data[k].shape != (len(data[xk]),) or data[k].min() < 0 or data[k].max() > 9:
            raise ValueError(f"MNIST-1D data {path}: {k} must hold one label 0..9 per sequence")


def as_steps(x: np.ndarray, upsample: int) -> np.ndarray:
    """Sequences (n, L) to network input (L * upsample, n, 1), each point held ``upsample`` steps."""
    return np.repeat(x.T, upsample, axis=0)[:, :, None]
