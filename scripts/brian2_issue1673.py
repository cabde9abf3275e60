"""Minimal reproduction of brian2 #1673 on brian2 2.9.0 (fixed in 2.10.0): why the engine never calls ``device.run``.

``device.run(run_args=...)`` walks the device's array cache and calls ``hasattr(var.owner, "name")``
on weak proxies; a variable of an object that has been garbage-collected (here the ephemeral
subgroup ``G[:5]`` used to set a value) raises ``ReferenceError`` (``hasattr`` catches only
``AttributeError``).  cortical_gle's cpp_standalone target starts the compiled program itself with
the same ``group.var=file`` arguments (cortical_gle/engines/brian2_/standalone.py,
docs/brian2.md#cpp_standalone).

Usage:  .venv/bin/python scripts/brian2_issue1673.py    (compiles a tiny program, ~10 s; prints the error on 2.9.0)
"""
import gc
import tempfile

from brian2 import NeuronGroup, device, ms, run, set_device

if __name__ == "__main__":
    set_device("cpp_standalone", directory=tempfile.mkdtemp(prefix="brian2_1673_"), build_on_run=False)
    G = NeuronGroup(10, "v : 1")
    G[:5].v = 1          # an ephemeral Subgroup: its variables enter the array cache, then it is collected
    run(1 * ms)
    device.build(run=False)
    gc.collect()
    try:
        device.run(run_args={G.v: 0.5})
        print("device.run with run_args worked (brian2 >= 2.10.0)")
    except ReferenceError as err:
        print(f"brian2 #1673: ReferenceError: {err}")
