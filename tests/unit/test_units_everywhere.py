"""Units are kept where users type them: engines' ``dt`` and every time-valued protocol setting."""
from typing import Annotated, get_args, get_origin

import numpy as np
import pytest
import quantities as pq
from pydantic import BaseModel, BeforeValidator

from cortical_gle import NetworkSpec, get_engine
from cortical_gle.protocol import list_protocols, load_protocol
from cortical_gle.tasks import get_task
from cortical_gle.units import UnitError

# every time-valued setting of every task (a list index stands for any item of the list)
TIME_KEYS = {
    "teacher-student": ["dt", "network.tau_r", "teacher.tau_m", "student.tau_m_init", "input.tau",
                        "timing.t_init", "timing.t_train", "learning.tau_min", "record.loss_every",
                        "record.trace_length"],
    "phase-advance": ["dt", "neurons.0.tau_m", "neurons.0.tau_r"],
    "mnist1d": ["dt", "network.tau", "network.li_tau_r", "network.error_tau", "training.readout_start"],
    "speech-commands": ["dt", "network.tau", "network.li_tau_r", "network.error_tau", "network.input_tau",
                        "training.readout_start"],
    "ephys-comparison": ["generate.duration", "generate.dt", "generate.tau_noise", "skip"],
}


def test_engine_converts_a_dt_quantity_as_the_spec_converts_its_taus():
    """``dt = 10 us`` is 0.01 in a ms spec and 1e-5 in a s spec (exact unit arithmetic, 1e-12 relative);
    a plain number is in ``spec.time_unit``, as for the spec's taus; a frequency is refused, naming dt."""
    engine = get_engine("numpy")
    spec_ms = NetworkSpec.feedforward([1, 2, 1], tau_m=1 * pq.ms, tau_r=0.1 * pq.ms)
    spec_s = NetworkSpec.feedforward([1, 2, 1], tau_m=1 * pq.ms, tau_r=0.1 * pq.ms, time_unit=pq.s)
    assert engine.build(spec_ms, dt=10 * pq.us).dt == pytest.approx(0.01, rel=1e-12)
    assert engine.build(spec_ms, dt="10 us").dt == pytest.approx(0.01, rel=1e-12)
    assert engine.build(spec_s, dt=10 * pq.us).dt == pytest.approx(1e-5, rel=1e-12)
    assert engine.build(spec_ms, dt=0.01).dt == 0.01
    # the same network, stepped with dt given either way, gives the same trajectory
    x = np.sin(np.linspace(0, 6, 200))[:, None, None]
    a = engine.build(spec_ms, dt=10 * pq.us, seed=3).run(x, record=("r_out",))["r_out"]
    b = engine.build(spec_ms, dt=0.01, seed=3).run(x, record=("r_out",))["r_out"]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnitError, match="dt must have the dimension"):
        engine.build(spec_ms, dt=1 * pq.Hz)


def _unit_converters(tp) -> list:
    """Units of the unit-converting validators inside a type annotation (through Union, list, tuple)."""
    out = []
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        out += [m.func.unit for m in meta if isinstance(m, BeforeValidator) and hasattr(m.func, "unit")]
    for arg in get_args(tp):
        out += _unit_converters(arg)
    return out


def _sub_models(tp) -> list:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in get_args(tp) for m in _sub_models(arg)]


def time_typed_keys(model, prefix="") -> set:
    """Dotted keys of ``model`` whose type converts times (the shared ``Time`` field types)."""
    keys = set()
    for name, f in model.model_fields.items():
        units = [m.func.unit for m in f.metadata if isinstance(m, BeforeValidator) and hasattr(m.func, "unit")]
        if any(u is pq.ms for u in units + _unit_converters(f.annotation)):
            keys.add(prefix + name)
        for sub in _sub_models(f.annotation):
            keys |= time_typed_keys(sub, f"{prefix}{name}.")
    return keys


@pytest.mark.parametrize("task", sorted(TIME_KEYS))
def test_every_time_setting_uses_the_time_field_type(task):
    """The keys listed as time-valued are exactly the keys typed with the unit-converting field."""
    listed = {".".join(p for p in k.split(".") if not p.isdigit()) for k in TIME_KEYS[task]}
    assert time_typed_keys(get_task(task).Config) == listed


def _get(obj, dotted):
    for part in dotted.split("."):
        obj = obj[int(part)] if part.isdigit() else obj[part]
    return obj


@pytest.mark.parametrize("name", [n for n, _ in list_protocols()])
def test_every_time_setting_of_every_shipped_protocol_accepts_a_unit_string(name):
    """"100 us" becomes 0.1 (ms) for every time-valued key, "0.5 s" becomes 500; exact up to float rounding."""
    cfg, _, _ = load_protocol(name)
    keys = TIME_KEYS[cfg.task]
    for key in keys:
        for text, ms in (("100 us", 0.1), ("0.5 s", 500.0)):
            value = [text, text] if key == "student.tau_m_init" else text
            resolved = _get(load_protocol(name, [(key, value)])[0].model_dump(), key)
            assert np.allclose(resolved, ms, rtol=1e-12), (name, key, text, resolved)
    if cfg.task == "teacher-student":   # per-layer lists of times, nested per neuron
        c = load_protocol(name, [("teacher.tau_m", ["1 ms", ["500 us", "2 ms"]])])[0]
        assert c.teacher.tau_m == [1.0, [0.5, 2.0]]
        with pytest.raises(Exception, match="teacher.tau_m"):
            load_protocol(name, [("teacher.tau_m", "1 Hz")])
