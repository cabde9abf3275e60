"""Protocol files: load, override, validate (schema by pydantic), run.

A protocol is a YAML file in ``protocols/`` (or a user's own path) whose
``task`` key selects a task module in :mod:`cortical_gle.tasks`; that module's
pydantic model is the schema.  Unknown keys, wrong types and out-of-range
values are rejected before anything runs, naming the key, the value and what
was expected.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .resources import data_dir


class ProtocolError(ValueError):
    """A protocol file is missing, malformed or invalid."""


class RecordingSettings(BaseModel):
    """``recording:`` section: GLE variables written as Neo data (NIX) next to metrics.json."""

    model_config = ConfigDict(extra="forbid")

    variables: list[str] = []
    every: int = Field(1, ge=1, description="keep every n-th step")


class ProtocolBase(BaseModel):
    """Keys every protocol file has."""

    model_config = ConfigDict(extra="forbid")

    task: str
    description: str = ""
    engines: list[str] = ["numpy"]
    quick: dict = {}
    recording: RecordingSettings | None = None
    #: settings of the engine the run uses, e.g. ``{target: cpp_standalone}`` for Brian2's code generation;
    #: checked against the engine at run start (:func:`cortical_gle.engines.engine_options`)
    engine_options: dict[str, Any] = {}


def list_protocols() -> list:
    """``[(name, description)]`` for the shipped protocol files."""
    out = []
    for path in sorted(data_dir("protocols").glob("*.yaml")):
        try:
            desc = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            desc = "(unreadable)"
        out.append((path.stem, " ".join(str(desc).split())))
    return out


def find_protocol(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ProtocolError(f"protocol file {p} does not exist")
        return p
    path = data_dir("protocols") / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(n for n, _ in list_protocols())
        raise ProtocolError(f"no protocol named {name_or_path!r}; shipped protocols: {known}")
    return path


def _set_dotted(d: dict, dotted: str, value) -> None:
    """Set ``a.b.0.c`` in nested dicts/lists (an integer part indexes a list)."""
    keys = dotted.split(".")
    cur = d
    for i, k in enumerate(keys[:-1]):
        if isinstance(cur, list):
            if not k.isdigit() or int(k) >= len(cur):
                raise ProtocolError(f"--set {dotted}: {'.'.join(keys[:i])} has no item {k!r}")
            cur = cur[int(k)]
            continue
        if k not in cur:
            cur[k] = {}
        if not isinstance(cur[k], (dict, list)):
            raise ProtocolError(f"--set {dotted}: {k!r} is not a section")
        cur = cur[k]
    last = keys[-1]
    if isinstance(cur, list):
        if not last.isdigit() or int(last) >= len(cur):
            raise ProtocolError(f"--set {dotted}: no item {last!r}")
        cur[int(last)] = value
    else:
        cur[last] = value


def parse_overrides(items) -> list:
    """``["network.tau_r=0.2", ...]`` to ``[(key, value)]`` (values read as YAML)."""
    out = []
    for item in items or []:
        if "=" not in item:
            raise ProtocolError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid protocol ({err.error_count()} problem(s)):"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{...}"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key (value {shown}); check the spelling")
        elif e["type"] == "missing":
            lines.append(f"  - {loc}: required key is missing")
        else:
            lines.append(f"  - {loc}: {e['msg']} (got {shown})")
    return "\n".join(lines)


def load_protocol(name_or_path, overrides=(), quick: bool = False):
    """Read, override and validate a protocol; returns ``(config, raw_dict, path)``."""
    from .tasks import get_task

    path = find_protocol(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProtocolError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"{path}: a protocol must be a mapping of keys, got {type(raw).__name__}")
    if "task" not in raw:
        raise ProtocolError(f"{path}: required key 'task' is missing")
    raw = copy.deepcopy(raw)
    if quick:
        quick_over = raw.get("quick") or {}
        if not isinstance(quick_over, dict):
            raise ProtocolError(f"{path}: 'quick' must be a mapping of overrides")
        for k, v in quick_over.items():
            _set_dotted(raw, k, v)
    for k, v in overrides:
        _set_dotted(raw, k, v)
    task = get_task(raw["task"], source=str(path))
    try:
        cfg = task.Config.model_validate(raw)
    except ValidationError as err:
        raise ProtocolError(format_validation_error(err, str(path))) from None
    return cfg, raw, path


def protocol_hash(raw: dict) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
