"""Protocol files: schema validation errors name key, value and expectation; overrides; the CLI."""
import json
import subprocess
import sys

import pytest
import yaml

from cortical_gle.protocol import ProtocolError, list_protocols, load_protocol, parse_overrides


def write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


BASE = {"task": "phase-advance", "dt": "0.01 ms", "neurons": [{"tau_m": "10 ms", "tau_r": "1 ms"}],
        "frequencies": ["10 Hz"]}


def test_shipped_protocols_are_listed_and_valid():
    names = [n for n, _ in list_protocols()]
    assert "phase-advance" in names
    for name in names:
        load_protocol(name)
        load_protocol(name, quick=True)


def test_typo_key_is_named(tmp_path):
    with pytest.raises(ProtocolError, match=r"frequncies: unknown key"):
        load_protocol(write(tmp_path, {**BASE, "frequncies": [1]}))


def test_missing_key_is_named(tmp_path):
    data = dict(BASE)
    del data["neurons"]
    with pytest.raises(ProtocolError, match=r"neurons: required key is missing"):
        load_protocol(write(tmp_path, data))


def test_wrong_dimension_and_range(tmp_path):
    with pytest.raises(ProtocolError, match=r"neurons\.0\.tau_m: .*dimension of ms, got Hz.*got \"10 Hz\""):
        load_protocol(write(tmp_path, {**BASE, "neurons": [{"tau_m": "10 Hz", "tau_r": "1 ms"}]}))
    with pytest.raises(ProtocolError, match=r"cycles: Input should be greater than or equal to 1 \(got 0\)"):
        load_protocol(write(tmp_path, {**BASE, "cycles": 0}))
    with pytest.raises(ProtocolError, match=r"cycles: Input should be a valid integer"):
        load_protocol(write(tmp_path, {**BASE, "cycles": "many"}))


def test_malformed_yaml_and_unknown_task(tmp_path):
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(write(tmp_path, "task: [unclosed"))
    with pytest.raises(ValueError, match="unknown task 'phase'"):
        load_protocol(write(tmp_path, {**BASE, "task": "phase"}))
    with pytest.raises(ProtocolError, match="no protocol named 'nope'"):
        load_protocol("nope")


def test_overrides_are_validated_like_the_file(tmp_path):
    cfg, raw, _ = load_protocol(write(tmp_path, BASE), parse_overrides(["cycles=5", "neurons.0.tau_r=2 ms"]))
    assert cfg.cycles == 5 and cfg.neurons[0].tau_r == 2.0
    with pytest.raises(ProtocolError, match="cycles"):
        load_protocol(write(tmp_path, BASE), parse_overrides(["cycles=-1"]))
    with pytest.raises(ProtocolError, match="KEY=VALUE"):
        parse_overrides(["cycles"])


def test_cli_run_writes_metrics_config_and_plot(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "cortical_gle", "run", "phase-advance", "--quick", "--out", str(out),
                          "--set", "settle=3"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "phase_advance.png").stat().st_size > 10_000
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["resolved"]["settle"] == 3 and config["quick"] is True
    n = metrics["neurons"][1]
    assert set(n) >= {"tau_m", "tau_r", "frequencies_hz", "phase_deg", "gain"}
    assert metrics["max_phase_error_deg"] < 1.0


def test_cli_reports_tau_below_dt(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cortical_gle", "run", "phase-advance", "--quick", "--set", "dt=0.02 ms",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "tau_r of layer 0 neuron 2 is 0.01, below dt = 0.02" in res.stderr


def test_cli_reports_bad_protocol_cleanly(tmp_path):
    bad = write(tmp_path, {**BASE, "dt": "fast"})
    res = subprocess.run([sys.executable, "-m", "cortical_gle", "run", str(bad), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "dt:" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_cli_refuses_engine_not_allowed(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cortical_gle", "run", "mnist1d", "--engine", "nest",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "'nest' is not one of them" in res.stderr
