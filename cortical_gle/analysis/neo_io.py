r"""A run's recordings as Neo data: ``neo.Block`` in memory, NIX (or NWB) on disk.

Layout (one convention for every engine; it only reads the arrays that an
engine's ``run(..., record=(...))`` returns, time first):

* one :class:`neo.Segment` per trial, epoch or method (``segment.name`` says
  which; further keys are segment annotations);
* one :class:`neo.AnalogSignal` per variable (``u``, ``u_pro``, ``r``, ``v``,
  ``e``, ``r_out``) whose channels are the real neurons of every layer and
  batch element (zero-padding dropped), with per-channel array annotations
  ``layer``, ``neuron`` and ``batch``;
* :class:`neo.SpikeTrain` objects where a spiking variant provides spikes;
* the network description (``NetworkSpec.to_json()``) and the protocol settings
  (JSON) as block annotations: NIX keeps flat values only, so nested settings
  travel as JSON strings.

Sample ``k`` of a recording taken every ``every`` steps is the value after step
:math:`(k+1)\,\mathrm{every} - 1`, i.e. at time

.. math:: t_k = t_0 + (k+1)\,\mathrm{every}\,dt,

so ``sampling_period = every dt`` and ``t_start = t_0 + every dt``.

Chunked writing: :class:`NeoRecorder` writes each segment as soon as the task
hands it over (one NIX block per segment, appended to the open file), so a run
holds at most one segment's recording in memory next to the engine's own
arrays; :func:`read_run` joins the blocks back into one.  The file is written
under a ``.partial`` name and renamed when the recorder closes: an interrupted
run never leaves a file that looks complete.

GLE's variables are dimensionless (docs/model.md#continuous-model: rates and potentials in the
same arbitrary unit); the unit is still stored so that recordings from
biophysical engines (mV, pA) use the same code path.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import neo
import numpy as np
import quantities as pq

#: what each GLE variable is (stored as the signal's ``description``)
VARIABLES = {
    "u": "somatic potential",
    "u_pro": "prospective potential u + tau_r du/dt",
    "r": "rate phi(u_pro)",
    "v": "error-unit potential",
    "e": "prospective error v + tau_m dv/dt",
    "r_out": "output-layer rate",
}
FORMATS = {"nix": ".nix", "nwb": ".nwb"}


def parse_record(value) -> tuple:
    """``"u,r,e"`` or a list to a tuple of variable names, each checked against :data:`VARIABLES`."""
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in VARIABLES]
    if unknown:
        raise ValueError(f"record: unknown variable(s) {', '.join(unknown)}; recordable: {', '.join(VARIABLES)}")
    return tuple(dict.fromkeys(names))


def _channels(arr: np.ndarray, sizes: list):
    """(steps, L, B, N) padded -> (steps, channels) and per-channel layer, neuron, batch."""
    steps, L, B, _ = arr.shape
    if L != len(sizes):
        raise ValueError(f"recording has {L} layers, the network {len(sizes)}")
    cols, layer, neuron, batch = [], [], [], []
    for l, n in enumerate(sizes):
        cols.append(arr[:, l, :, :n].reshape(steps, B * n))
        layer += [l] * (B * n)
        batch += list(np.repeat(np.arange(B), n))
        neuron += list(np.tile(np.arange(n), B))
    return np.concatenate(cols, axis=1), np.array(layer), np.array(neuron), np.array(batch)


def recording_to_segment(recording: dict, spec, dt, name: str = "run", every: int = 1, t_start=0 * pq.ms,
                         units=pq.dimensionless, spiketrains=(), **annotations) -> neo.Segment:
    """One engine recording (``run(..., record=...)``'s dict) as a :class:`neo.Segment`.

    Parameters
    ----------
    recording : dict
        ``name -> array``: ``u``, ``u_pro``, ``r``, ``v``, ``e`` of shape
        (steps, layers, batch, width) and ``r_out`` of shape (steps, batch, n_out);
        other keys (``loss``) are left out.
    spec : NetworkSpec
    dt : quantity or float (``spec.time_unit``)
    every : int
        Keep every ``every``-th sample (the module docstring gives the times).
    spiketrains : sequence of neo.SpikeTrain
        Spikes of a spiking variant, added as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from cortical_gle import NetworkSpec
    >>> spec = NetworkSpec.feedforward([1, 2, 1], tau_m=1.0, tau_r=0.5)
    >>> rec = {"u": np.zeros((10, 2, 3, 2)), "r_out": np.zeros((10, 3, 1))}
    >>> seg = recording_to_segment(rec, spec, 0.1, every=5)
    >>> [(s.name, s.shape, float(s.sampling_period)) for s in seg.analogsignals]
    [('u', (2, 9), 0.5), ('r_out', (2, 3), 0.5)]
    """
    every = int(every)
    if every < 1:
        raise ValueError(f"every must be a positive integer, got {every}")
    dt_q = pq.Quantity(dt, spec.time_unit) if not isinstance(dt, pq.Quantity) else dt
    period = (every * dt_q).rescale(pq.ms)
    t0 = pq.Quantity(t_start).rescale(pq.ms) + period
    seg = neo.Segment(name=name, **annotations)
    for var, arr in recording.items():
        if var not in VARIABLES:
            continue
        arr = np.asarray(arr)[every - 1::every]
        if var == "r_out":
            steps, B, n = arr.shape
            data = arr.reshape(steps, B * n)
            layer = np.full(B * n, len(spec.layers) - 1)
            neuron, batch = np.tile(np.arange(n), B), np.repeat(np.arange(B), n)
        else:
            data, layer, neuron, batch = _channels(arr, [l.size for l in spec.layers])
        seg.analogsignals.append(neo.AnalogSignal(
            data, units=units, sampling_period=period, t_start=t0, name=var, description=VARIABLES[var],
            array_annotations={"layer": layer, "neuron": neuron, "batch": batch}))
    for st in spiketrains:
        seg.spiketrains.append(st)
    return seg


def _flat(value):
    """Annotation values NIX can hold: scalars and strings as they are, anything nested as JSON."""
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o), sort_keys=True)


def block_annotations(spec=None, settings=None, **extra) -> dict:
    """Block annotations: ``network`` (spec JSON), ``protocol`` (settings JSON) and flat extras."""
    out = {k: _flat(v) for k, v in extra.items()}
    if spec is not None:
        out["network"] = spec.to_json()
    if settings is not None:
        out["protocol"] = _flat(settings)
    return out


def _io(path: Path, fmt: str, mode: str):
    if fmt == "nix":
        from neo.io import NixIO
        return NixIO(str(path), mode=mode)
    if fmt == "nwb":
        try:
            from neo.io import NWBIO
        except ImportError as err:  # pragma: no cover - depends on pynwb being installed
            raise ValueError(f"format 'nwb' needs pynwb ({err}); use format 'nix'") from None
        return NWBIO(str(path), mode="w" if mode == "ow" else "r")
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


class NeoRecorder:
    """Writes segments to one NIX file as a run produces them (chunked; see the module docstring).

    Use as a context manager, or call :meth:`close`; an exception inside the
    ``with`` removes the partial file.
    """

    def __init__(self, path, annotations: dict | None = None, fmt: str = "nix"):
        self.path = Path(path)
        self.fmt = fmt
        if fmt != "nix":  # NWBIO writes whole files only: collect, then write at close
            _io(self.path, fmt, "ow")  # fail now on a missing backend, not at the end of the run
        self.annotations = dict(annotations or {})
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._io = _io(self.partial, "nix", "ow") if fmt == "nix" else None
        self._held = []
        self.n_segments = 0

    def add(self, segment: neo.Segment) -> None:
        block = neo.Block(name=self.path.stem, **self.annotations)
        block.segments.append(segment)
        if self._io is not None:
            self._io.write_block(block)
            for obj in [block, segment] + segment.analogsignals + segment.spiketrains:
                obj.annotations.pop("nix_name", None)  # NixIO's bookkeeping, added to the objects it writes
        else:
            self._held.append(segment)
        self.n_segments += 1

    def close(self) -> Path:
        if self._io is not None:
            self._io.close()
            self._io = None
        else:
            from datetime import datetime, timezone
            # NWB requires a session start; a simulation's is the moment it is written
            ann = {"session_start_time": datetime.now(timezone.utc), **self.annotations}
            block = neo.Block(name=self.path.stem, **ann)
            block.segments.extend(self._held)
            io = _io(self.partial, self.fmt, "ow")
            io.write_all_blocks([block])
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        if self._io is not None:
            self._io.close()
            self._io = None
        if self.partial.exists():
            self.partial.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_block(block: neo.Block, path, fmt: str | None = None) -> Path:
    """Write ``block`` to ``path`` (format from the suffix unless given) through a partial file."""
    path = Path(path)
    fmt = fmt or {v: k for k, v in FORMATS.items()}.get(path.suffix)
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the format from the suffix; give one of {', '.join(FORMATS)}")
    with NeoRecorder(path, block.annotations, fmt) as rec:
        for seg in block.segments:
            rec.add(seg)
    return path


def read_run(path) -> neo.Block:
    """Read a recording written by :class:`NeoRecorder` (or any Neo-readable file) as one Block.

    Blocks in the file are joined in order; the annotations of the first are
    kept, and the ``nix_name`` bookkeeping that NixIO adds is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recording {path} does not exist")
    blocks = read_blocks(path)
    out = neo.Block(name=blocks[0].name, **_clean(blocks[0].annotations))
    for b in blocks:
        for seg in b.segments:
            seg.annotations = _clean(seg.annotations)
            for obj in seg.analogsignals + seg.spiketrains:
                obj.annotations = _clean(obj.annotations)
            out.segments.append(seg)
    return out


def _clean(ann: dict) -> dict:
    return {k: v for k, v in ann.items() if k != "nix_name"}


def read_blocks(path) -> list:
    """All blocks of a file any Neo IO can read; a clear error when none can."""
    path = Path(path)
    if path.suffix == ".nix":
        from neo.io import NixIO
        try:
            with NixIO(str(path), mode="ro") as io:
                return io.read_all_blocks()
        except Exception as err:
            raise ValueError(f"{path}: not a readable NIX file ({type(err).__name__}: {err})") from None
    if path.suffix == ".nwb":
        io = _io(path, "nwb", "ro")
        return io.read_all_blocks()
    try:
        io = neo.io.get_io(str(path))
    except Exception as err:
        raise ValueError(f"{path}: no Neo IO can read this file ({type(err).__name__}: {err})") from None
    try:
        return io.read_all_blocks() if hasattr(io, "read_all_blocks") else [io.read_block()]
    except Exception as err:
        raise ValueError(f"{path}: {type(io).__name__} failed to read it ({type(err).__name__}: {err})") from None


def export_run(run_dir, fmt: str = "nix") -> Path:
    """Convert a finished run's recording (``RUN_DIR/recording.nix``) to ``fmt``; returns the new file."""
    run_dir = Path(run_dir)
    src = run_dir / "recording.nix"
    if not src.is_file():
        raise FileNotFoundError(f"{run_dir}: no recording.nix (run with --record VARS to make one)")
    dst = run_dir / f"recording{FORMATS.get(fmt, '')}"
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if dst == src:
        return src
    return write_block(read_run(src), dst, fmt)
