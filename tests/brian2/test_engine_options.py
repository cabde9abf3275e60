"""A protocol's ``engine_options`` (``--set engine_options.target=...``) on real Brian2.

The option must reach the network the task builds (``net.target``), win over
``CORTICAL_GLE_BRIAN2_TARGET`` and lose to an explicit ``target=``; options an engine does
not know, or targets Brian2 does not offer, are errors naming them before a run writes
anything; and the options end with the run (also after an error).  Networks are built,
not run, except one phase-advance run (--quick, Brian2's numpy target, a few seconds),
whose phases must follow the closed form as on every target.
"""
import json

import pytest
import yaml

from cortical_gle import NetworkSpec
from cortical_gle.cli import main
from cortical_gle.engines import engine_options, get_engine
from cortical_gle.engines.brian2_ import Brian2GLENetwork
from cortical_gle.engines.brian2_.standalone import StandaloneGLENetwork, check_compiler
from cortical_gle.spec import LayerSpec

pytestmark = pytest.mark.brian2

SPEC = NetworkSpec(2, (LayerSpec(3, tau_m=1.0, tau_r=0.5), LayerSpec(1, tau_m=2.0, tau_r=1.0, phi="linear")))


def _run(tmp_path, name, engine, *sets):
    out = tmp_path / name
    args = ["run", "phase-advance", "--quick", "--engine", engine, "--no-progress", "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    return main(args), out


def test_cli_option_reaches_the_network_over_the_environment(tmp_path, monkeypatch, capsys):
    """With the environment naming no valid target, only the option can let the run build its network."""
    monkeypatch.setenv("CORTICAL_GLE_BRIAN2_TARGET", "no_such_target")
    rc, out = _run(tmp_path, "opt", "brian2", "engine_options.target=numpy")
    assert rc == 0, capsys.readouterr().err
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["resolved"]["engine_options"] == {"target": "numpy"}   # part of the run's identity
    # the phase lead of tau_r = tau_m neurons follows the closed form (docs: < 1 deg at the quick settings)
    assert json.loads((out / "metrics.json").read_text())["max_phase_error_deg"] < 1.0
    assert get_engine("brian2").options == {}                # ended with the run
    with pytest.raises(ValueError, match="no_such_target"):  # so the environment applies again
        get_engine("brian2").build(SPEC, 0.05)


def test_option_is_a_default_under_an_explicit_target(monkeypatch):
    monkeypatch.setenv("CORTICAL_GLE_BRIAN2_TARGET", "numpy")
    check_compiler()   # cpp_standalone networks are built here, never run (no compilation)
    with engine_options("brian2", target="cpp_standalone"):
        net = get_engine("brian2").build(SPEC, 0.05, seed=0)
        assert isinstance(net, StandaloneGLENetwork) and net.target == "cpp_standalone"
        explicit = get_engine("brian2").build(SPEC, 0.05, seed=0, target="numpy")
        assert type(explicit) is Brian2GLENetwork and explicit.target == "numpy"
        assert get_engine("numpy").options == {}              # options belong to the engine they name
    assert get_engine("brian2").build(SPEC, 0.05, seed=0).target == "numpy"


def test_option_reaches_load(tmp_path, monkeypatch):
    """A file saved on cpp_standalone loads on its own target, unless the option names another."""
    monkeypatch.setenv("CORTICAL_GLE_BRIAN2_TARGET", "numpy")
    check_compiler()
    path = tmp_path / "net.npz"
    StandaloneGLENetwork(SPEC, 0.05, seed=0).save(path)
    assert get_engine("brian2").load(path).target == "cpp_standalone"
    with engine_options("brian2", target="numpy"):
        net = get_engine("brian2").load(path)
    assert type(net) is Brian2GLENetwork and net.target == "numpy"


def test_options_end_with_the_block_also_on_error():
    check_compiler()
    with pytest.raises(RuntimeError, match="inside"):
        with engine_options("brian2", target="numpy"):
            with engine_options("brian2", target="cpp_standalone"):
                assert get_engine("brian2").options == {"target": "cpp_standalone"}
            assert get_engine("brian2").options == {"target": "numpy"}   # the outer block's again
            raise RuntimeError("inside")
    assert get_engine("brian2").options == {}


@pytest.mark.parametrize("engine, setting, named", [
    ("brian2", "engine_options.target=cuda", ["engine_options.target", "'cuda'", "cpp_standalone"]),
    ("brian2", "engine_options.threads=2", ["'threads'", "brian2", "target"]),
    ("numpy", "engine_options.target=numpy", ["'target'", "numpy engine", "none"]),
])
def test_bad_options_are_refused_before_the_run(tmp_path, capsys, engine, setting, named):
    rc, out = _run(tmp_path, "bad", engine, setting)
    err = capsys.readouterr().err
    assert rc == 2
    for word in named:
        assert word in err
    assert not out.exists()   # nothing written


def test_engine_options_names_the_engine():
    with pytest.raises(ValueError, match="the numpy engine has no option 'target'"):
        with engine_options("numpy", target="numpy"):
            pass
    with pytest.raises(ValueError, match="unknown engine 'brain2'"):
        with engine_options("brain2", target="numpy"):
            pass
