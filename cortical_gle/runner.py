"""Run a validated protocol: one output folder with metrics.json, config.yaml and plots."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import __version__
from .io import save_figure, write_atomic, write_json
from .protocol import ProtocolError, load_protocol, protocol_hash


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


def run_protocol(name_or_path, engine: str = "numpy", seed: int = 0, out_dir=None, quick: bool = False,
                 overrides=(), resume: bool = False, progress: bool = True, record=None, record_every=None) -> dict:
    """Validate and run a protocol; returns the metrics written to ``out_dir/metrics.json``."""
    from .tasks import get_task

    if resume:
        if out_dir is None or not (Path(out_dir) / "config.yaml").is_file():
            raise ProtocolError(f"--resume {out_dir}: no config.yaml of an earlier run there")
        saved = yaml.safe_load((Path(out_dir) / "config.yaml").read_text())
        name_or_path, engine, seed, quick = saved["protocol"], saved["engine"], saved["seed"], saved["quick"]
        overrides = [tuple(o) for o in saved.get("overrides", [])]
    cfg, raw, path = load_protocol(name_or_path, overrides, quick=quick)
    if engine not in cfg.engines:
        raise ProtocolError(f"protocol {path.stem!r} runs on the engine(s) {', '.join(cfg.engines)}; "
                            f"{engine!r} is not one of them")
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out_dir, engine, int(seed), quick, resume, progress)
    _recording_settings(ctx, cfg, record, record_every)
    config = {
        "protocol": str(name_or_path), "protocol_file": str(path.resolve()), "engine": engine, "seed": int(seed),
        "quick": quick, "overrides": [list(o) for o in overrides], "protocol_hash": protocol_hash(raw),
        "units": "times in ms, frequencies in Hz unless a key says otherwise",
        "resolved": cfg.model_dump(mode="json"),
    }
    ctx.settings = config
    write_atomic(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    t0 = time.perf_counter()
    task = get_task(cfg.task)
    try:
        metrics = task.run(cfg, ctx)
    except KeyboardInterrupt:
        if ctx.recorder is not None:
            ctx.recorder.abort()
        write_json(out_dir / "metrics.json", {"protocol": path.stem, "status": "interrupted", "engine": engine,
                                              "seed": int(seed), "partial": ctx.partial})
        raise
    except BaseException:
        if ctx.recorder is not None:
            ctx.recorder.abort()
        raise
    if ctx.recorder is not None:
        metrics["recording"] = {"file": ctx.recorder.close().name, "segments": ctx.recorder.n_segments,
                                "variables": list(ctx.record), "every": ctx.record_every}
    metrics = {
        "protocol": path.stem, "task": cfg.task, "engine": engine, "seed": int(seed), "quick": quick,
        "protocol_hash": config["protocol_hash"], "cortical_gle_version": __version__,
        "python": platform.python_version(), "wall_time_s": round(time.perf_counter() - t0, 3),
        "status": "complete", **metrics, "plots": ctx.plots,
    }
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
