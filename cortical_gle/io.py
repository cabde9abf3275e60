"""Result files written atomically: a crash never leaves half a file."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path, arrays: dict) -> None:
    """``np.savez`` written atomically (checkpoints, caches)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def write_json(path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=_default, allow_nan=True) + "\n")


def save_figure(fig, path) -> None:
    """Save a matplotlib figure to PNG through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    import matplotlib.pyplot as plt
    plt.close(fig)


def read_npz(path, what: str):
    """All arrays of a ``.npz`` file written by :func:`atomic_savez` and its JSON ``meta``; an unreadable
    file is a ``ValueError`` that names it as not being ``what``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        return data, json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a {what} ({err})") from None
