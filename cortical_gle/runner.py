"""Run a validated protocol: one output folder with metrics.json, config.yaml and plots.

An output folder holds exactly one run.  Its ``config.yaml`` records the run's
identity (protocol hash, resolved settings, seed, engine, package version) and
``run_id``, a hash of them; checkpoints and progress files are stamped with
``run_id`` so that a task never continues from another run's files.  ``run``
into a folder that holds a run refuses (``overwrite=True`` clears its files
first); ``resume`` refuses a folder whose identity differs from what the
current code and the given options would run, naming each difference.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import __version__
from .engines import engine_class, engine_options
from .io import save_figure, write_atomic, write_json
from .protocol import ProtocolError, find_protocol, load_protocol, protocol_hash

#: files a run writes besides its plots (the plots are listed in metrics.json)
RUN_FILE_PATTERNS = ("config.yaml", "metrics.json", "methods_done.json", "checkpoint_*.npz", "recording.nix",
                     "recording.nwb")
#: the keys of config.yaml that make up a run's identity
IDENTITY_KEYS = ("protocol_file", "engine", "seed", "quick", "cortical_gle_version", "protocol_hash", "resolved")


@dataclass
class RunContext:
    """What a task gets besides its config: where to write, which engine, seed, flags."""

    out_dir: Path
    engine: str
    seed: int
    quick: bool = False
    resume: bool = False
    progress: bool = True
    plots: list = field(default_factory=list)
    partial: dict = field(default_factory=dict)  # metrics so far, written if the run is interrupted
    run_id: str = ""
    record: tuple = ()  # variables written as Neo data (recording.nix); empty: none
    record_every: int = 1
    recorder: object = None
    settings: dict = field(default_factory=dict)  # resolved protocol, annotated on the recording

    def save_figure(self, fig, name: str) -> None:
        save_figure(fig, self.out_dir / name)
        self.plots.append(name)

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def record_segment(self, recording: dict, spec, dt, name: str, **annotations) -> None:
        """Hand one trial/epoch/method's engine recording to the Neo writer (if recording is on)."""
        if not self.record:
            return
        from .analysis.neo_io import NeoRecorder, block_annotations, recording_to_segment
        if self.recorder is None:
            self.recorder = NeoRecorder(self.path("recording.nix"), block_annotations(
                spec, self.settings, engine=self.engine, seed=self.seed, record_every=self.record_every))
        self.recorder.add(recording_to_segment(recording, spec, dt, name, every=self.record_every, **annotations))

    # -- files that let an interrupted run continue, bound to this run --------
    def _check_owner(self, path: Path, owner) -> None:
        if owner != self.run_id:
            raise ProtocolError(
                f"{path} belongs to run {owner or '(unstamped)'}, not to this run {self.run_id}: refusing to "
                f"continue from another run's file; remove it, or start afresh with --overwrite")

    def save_checkpoint(self, net, name: str, progress: dict) -> None:
        """Save ``net`` with its ``progress`` (JSON) in one atomic file stamped with :attr:`run_id`."""
        net.save(self.path(name), extra={**progress, "run_id": self.run_id})

    def load_checkpoint(self, name: str, load=None, resuming_only: bool = True):
        """The network this run saved under ``name`` (its progress in ``net.extra``), or ``None``.

        ``None`` unless the file exists and (with ``resuming_only``) the run is
        resuming; a file stamped by another run is refused
        (:class:`~cortical_gle.protocol.ProtocolError`).
        """
        path = self.path(name)
        if not ((self.resume or not resuming_only) and path.is_file()):
            return None
        if load is None:
            from .engines import get_engine
            load = get_engine(self.engine).load
        net = load(path)
        self._check_owner(path, net.extra.pop("run_id", None))
        return net

    def save_state(self, name: str, obj) -> None:
        """Write ``obj`` (JSON) to ``name`` atomically, stamped with :attr:`run_id`."""
        write_json(self.path(name), {"run_id": self.run_id, "content": obj})

    def load_state(self, name: str, default=None):
        """What :meth:`save_state` wrote under ``name`` in this run, or ``default`` when not resuming
        or absent; a file of another run is refused."""
        path = self.path(name)
        if not (self.resume and path.is_file()):
            return default
        data = json.loads(path.read_text())
        owner = data.get("run_id") if isinstance(data, dict) else None
        self._check_owner(path, owner)
        return data["content"]


def run_files(out_dir) -> list:
    """The files of a run in ``out_dir`` (config, metrics, progress, checkpoints and listed plots)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = {p for pattern in RUN_FILE_PATTERNS for p in out_dir.glob(pattern) if p.is_file()}
    try:
        plots = json.loads((out_dir / "metrics.json").read_text()).get("plots", [])
    except (OSError, ValueError, AttributeError):
        plots = []
    found |= {out_dir / Path(p).name for p in plots if isinstance(p, str) and (out_dir / Path(p).name).is_file()}
    return sorted(found)


def run_identity(config: dict) -> str:
    """``run_id``: a hash of the identity keys of a run's ``config.yaml``."""
    ident = {k: config.get(k) for k in IDENTITY_KEYS}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _differences(saved: dict, now: dict) -> list:
    """``"key: A in the folder, B now"`` for every identity key (dotted into ``resolved``) that differs."""
    out = []

    def walk(a, b, key):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, "(absent)"), b.get(k, "(absent)"), f"{key}.{k}" if key else str(k))
        elif a != b:
            out.append(f"{key}: {json.dumps(a, default=str)} in the folder, {json.dumps(b, default=str)} now")

    for k in IDENTITY_KEYS:   # the resolved settings are named by their own dotted keys
        walk(saved.get(k, "(not recorded)"), now.get(k), "" if k == "resolved" else k)
    return out


def _resume_options(out_dir, name_or_path, engine, seed, quick, overrides):
    """The saved run's options, with the given ones (which must lead to the same run) applied on top."""
    cfg_file = Path(out_dir) / "config.yaml" if out_dir is not None else None
    if cfg_file is None or not cfg_file.is_file():
        raise ProtocolError(f"--resume {out_dir}: no config.yaml of an earlier run there")
    saved = yaml.safe_load(cfg_file.read_text()) or {}
    protocol = saved.get("protocol")
    if Path(str(protocol)).suffix in (".yaml", ".yml") and not Path(str(protocol)).is_file():
        protocol = saved.get("protocol_file")   # a relative path given from another working directory
    if name_or_path is not None:
        given = str(find_protocol(name_or_path).resolve())
        if given != saved.get("protocol_file"):
            raise ProtocolError(f"--resume {out_dir}: the folder holds a run of {saved.get('protocol_file')}, "
                                f"not of {given}")
    return saved, (protocol, saved["engine"] if engine is None else engine,
                   saved["seed"] if seed is None else int(seed), saved["quick"] if quick is None else bool(quick),
                   [tuple(o) for o in saved.get("overrides", [])] + list(overrides))


def run_protocol(name_or_path=None, engine: str | None = None, seed: int | None = None, out_dir=None,
                 quick: bool | None = None, overrides=(), resume: bool = False, progress: bool = True,
                 overwrite: bool = False, record=None, record_every=None) -> dict:
    """Validate and run a protocol; returns the metrics written to ``out_dir/metrics.json``.

    ``engine``, ``seed`` and ``quick`` default to ``"numpy"``, 0 and ``False``
    for a new run.  With ``resume=True`` they default to the saved run's values
    and any given value (``overrides`` are applied on top of the saved ones)
    must lead to the same run: a folder whose settings, seed, engine or
    package version differ from what would run now is refused, naming each
    difference.  A new run into a folder that holds a run's files refuses
    unless ``overwrite=True``, which deletes those files first.
    """
    from .tasks import get_task

    saved = None
    if resume:
        if overwrite:
            raise ProtocolError("--resume continues the run in a folder; --overwrite would delete it: use one")
        saved, (name_or_path, engine, seed, quick, overrides) = _resume_options(
            out_dir, name_or_path, engine, seed, quick, overrides)
    elif name_or_path is None:
        raise ProtocolError("run needs a protocol name or file (or resume=True with an output folder)")
    engine = "numpy" if engine is None else engine
    seed, quick = (0 if seed is None else int(seed)), bool(quick)
    cfg, raw, path = load_protocol(name_or_path, overrides, quick=quick)
    if engine not in cfg.engines:
        raise ProtocolError(f"protocol {path.stem!r} runs on the engine(s) {', '.join(cfg.engines)}; "
                            f"{engine!r} is not one of them")
    try:
        engine_class(engine).check_options(cfg.engine_options)
    except (ValueError, RuntimeError) as err:
        raise ProtocolError(f"protocol {path.stem!r} on the {engine} engine: {err}") from None
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / path.stem
    config = {
        "protocol": str(name_or_path), "protocol_file": str(path.resolve()), "engine": engine, "seed": seed,
        "quick": quick, "overrides": [list(o) for o in overrides], "protocol_hash": protocol_hash(raw),
        "cortical_gle_version": __version__,
        "units": "times in ms, frequencies in Hz unless a key says otherwise",
        # no engine options: the key stays out, so runs saved before the setting existed resume
        "resolved": cfg.model_dump(mode="json", exclude={"engine_options"} if not cfg.engine_options else None),
    }
    config["run_id"] = run_identity(config)
    if resume:
        diffs = _differences(saved, config)
        if diffs or saved.get("run_id") != config["run_id"]:
            raise ProtocolError(f"--resume {out_dir}: the folder holds a run that differs from what would run now; "
                                "refusing to mix runs:\n  - " + "\n  - ".join(diffs or ["run_id"]))
    else:
        existing = run_files(out_dir)
        if existing and not overwrite:
            raise ProtocolError(
                f"{out_dir} holds another run ({', '.join(p.name for p in existing)}); continue it with "
                f"--resume {out_dir}, clear it with --overwrite, or choose another --out")
        for p in existing:
            p.unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    ctx = RunContext(out_dir, engine, seed, quick, resume, progress, run_id=config["run_id"], settings=config)
    _recording_settings(ctx, cfg, record, record_every)
    t0 = time.perf_counter()
    task = get_task(cfg.task)
    ident = {"protocol": path.stem, "task": cfg.task, "engine": engine, "seed": seed, "quick": quick,
             "protocol_hash": config["protocol_hash"], "run_id": config["run_id"], "cortical_gle_version": __version__}
    try:
        with engine_options(engine, **cfg.engine_options):   # in force for this run only
            metrics = task.run(cfg, ctx)
    except KeyboardInterrupt:
        if ctx.recorder is not None:
            ctx.recorder.abort()
        write_json(out_dir / "metrics.json", {**ident, "status": "interrupted", "partial": ctx.partial,
                                              "plots": ctx.plots})
        raise
    except BaseException:
        if ctx.recorder is not None:
            ctx.recorder.abort()
        raise
    if ctx.recorder is not None:
        metrics["recording"] = {"file": ctx.recorder.close().name, "segments": ctx.recorder.n_segments,
                                "variables": list(ctx.record), "every": ctx.record_every}
    metrics = {**ident, "python": platform.python_version(), "wall_time_s": round(time.perf_counter() - t0, 3),
               "status": "complete", **metrics, "plots": ctx.plots}
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _recording_settings(ctx: RunContext, cfg, record, record_every) -> None:
    """``--record``/``--record-every`` override the protocol's ``recording`` section."""
    from .analysis.neo_io import parse_record
    section = getattr(cfg, "recording", None)
    if record is None and section is not None:
        record = section.variables
    if record_every is None:
        record_every = section.every if section is not None else 1
    ctx.record = parse_record(record or ())
    if int(record_every) < 1:
        raise ValueError(f"--record-every must be a positive integer, got {record_every}")
    ctx.record_every = int(record_every)
