"""An output folder holds one run: resume and run never mix runs (all through the real CLI)."""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from cortical_gle.cli import main

ROOT = Path(__file__).resolve().parents[2]
# a LagLine small enough for a few seconds per run: gle then bptt:2, a checkpoint after every chunk
TINY = ["--set", "timing.t_init=1", "--set", "timing.batch=2", "--set", "methods=[gle, 'bptt:2']",
        "--set", "record.checkpoint_every=1", "--set", "record.loss_every=1", "--no-progress"]


def cli(*args):
    """``cortical-gle run ARGS`` through the CLI's entry point in this process (saves the start-up)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(["run", *map(str, args)])
        except SystemExit as exc:
            rc = exc.code
    return SimpleNamespace(returncode=rc, stderr=err.getvalue())


def interrupted_run(*args, wait_for):
    """Start the CLI and send SIGINT as soon as it (re)writes ``wait_for``, unless it exits first.

    Returns the exit code and stderr.
    """
    wait_for = Path(wait_for)
    before = wait_for.stat().st_mtime_ns if wait_for.exists() else None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "cortical_gle", "run", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if wait_for.exists() and wait_for.stat().st_mtime_ns != before:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def metrics(folder):
    return json.loads((Path(folder) / "metrics.json").read_text())


def test_reviewers_case_second_run_in_a_used_folder_never_reports_the_first_runs_numbers(tmp_path):
    """LagLine t_train = 2, then t_train = 100 into the same folder, Ctrl-C, resume (subprocesses).

    Before the fix the resumed run read the first run's ``methods_done.json``
    and reported "complete" with the t_train = 2 loss curves.  Now the second
    run is refused without ``--overwrite``; with it, the resumed result is the
    second run's own (its loss curve ends at t_train = 100).
    """
    out = tmp_path / "run"
    args = ["lagline", "--quick", *TINY, "--set", "methods=[gle]", "--out", out]
    first = cli(*args, "--set", "timing.t_train=2")
    assert first.returncode == 0, first.stderr
    second = [*args, "--set", "timing.t_train=100"]
    rc, err = interrupted_run(*second, wait_for=out / "checkpoint_gle.npz")
    refused = rc == 2 and "holds another run" in err and "--overwrite" in err
    if refused:  # the first run's files are untouched; --overwrite clears them
        assert metrics(out)["status"] == "complete" and metrics(out)["methods"]["gle"]["loss_t"][-1] == 2.0
        rc, err = interrupted_run(*second, "--overwrite", wait_for=out / "checkpoint_gle.npz")
    assert rc == 130, err
    resumed = subprocess.run([sys.executable, "-m", "cortical_gle", "run", "--resume", str(out), "--no-progress"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert resumed.returncode == 0, resumed.stderr
    m = metrics(out)
    assert m["status"] == "complete" and m["methods"]["gle"]["loss_t"][-1] == pytest.approx(100.0)
    assert refused, plain.stderr


def test_resume_refuses_other_options_and_names_the_difference(tmp_path):
    """Options given with --resume must match the saved run; each mismatch is named."""
    out = tmp_path / "run"
    assert cli("lagline", "--quick", *TINY, "--set", "timing.t_train=2", "--out", out).returncode == 0
    # no engine options: the saved settings are those of a run from before the setting existed,
    # so such folders keep resuming (their run_id hashes the same settings)
    assert "engine_options" not in yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    cases = {
        ("--set", "timing.t_train=3"): "timing.t_train: 2.0 in the folder, 3.0 now",
        ("--seed", "1"): "seed: 0 in the folder, 1 now",
        ("phase-advance",): "not of",
    }
    for extra, message in cases.items():
        res = cli("--resume", out, "--no-progress", *extra)
        assert res.returncode == 2 and message in res.stderr, (extra, res.stderr)
    # the same options as saved are accepted
    same = cli("--resume", out, "lagline", "--quick", "--seed", "0", "--set", "timing.t_train=2", "--no-progress")
    assert same.returncode == 0, same.stderr


def test_resume_refuses_a_folder_of_another_engine_version_or_protocol_file(tmp_path):
    """The saved engine, package version and protocol file (hash) are compared with what would run now."""
    proto = tmp_path / "mine.yaml"
    proto.write_text((ROOT / "protocols" / "lagline.yaml").read_text())
    out = tmp_path / "run"
    assert cli(proto, "--quick", *TINY, "--set", "timing.t_train=2", "--out", out).returncode == 0
    cfg_text = (out / "config.yaml").read_text()
    for key, value, given, message in (
            ("engine", "brian2", ["--engine", "numpy"], 'engine: "brian2" in the folder, "numpy" now'),
            ("cortical_gle_version", "0.0.1", [], 'cortical_gle_version: "0.0.1" in the folder, "')):
        cfg = yaml.safe_load(cfg_text)
        cfg[key] = value
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        res = cli("--resume", out, "--no-progress", *given)
        assert res.returncode == 2 and message in res.stderr, (key, res.stderr)
    (out / "config.yaml").write_text(cfg_text)
    proto.write_text(proto.read_text().replace("lr: 1.0e-4", "lr: 2.0e-4"))
    res = cli("--resume", out, "--no-progress")
    assert res.returncode == 2 and "learning.lr: 0.0001 in the folder, 0.0002 now" in res.stderr, res.stderr
    assert "protocol_hash" in res.stderr


def test_resume_never_trusts_progress_files_of_another_run(tmp_path):
    """A methods_done.json or checkpoint copied from another run is refused, not used."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("lagline", "--quick", *TINY, "--set", "timing.t_train=2", "--out", a).returncode == 0
    assert cli("lagline", "--quick", *TINY, "--set", "timing.t_train=4", "--out", b).returncode == 0
    (b / "methods_done.json").write_bytes((a / "methods_done.json").read_bytes())
    res = cli("--resume", b, "--no-progress")
    assert res.returncode == 2 and "methods_done.json belongs to run" in res.stderr, res.stderr
    (b / "methods_done.json").unlink()
    (b / "checkpoint_gle.npz").write_bytes((a / "checkpoint_gle.npz").read_bytes())
    res = cli("--resume", b, "--no-progress")
    assert res.returncode == 2 and "checkpoint_gle.npz belongs to run" in res.stderr, res.stderr
