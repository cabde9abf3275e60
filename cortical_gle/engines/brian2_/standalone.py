"""The Brian2 engine on ``cpp_standalone``: the circuit compiled once into a C++ program, run chunk by chunk.

Brian2's standalone mode turns a whole script into one C++ program with fixed run
lengths and fixed sets of active objects and monitors; the engine contract runs many
sequences of any length that continue from the current state.  The bridge
(docs/brian2.md#cpp_standalone):

* **State lives in Python.**  A runtime circuit (numpy target, never run) holds every
  variable, so parameters, optimizer state, save/load, reset and batch changes are the
  Brian2 engine's own code.  A run writes every writable variable of every group to a
  file, starts the program with ``group.var=file`` arguments (Brian2's ``run_args``
  mechanism, parsed by the program's ``set_from_command_line``) and reads the program's
  result files back: continuity across calls is exact, no value is recomputed.
* **Any length without recompiling.**  The program runs ``chunk`` steps at most; a
  run-regularly operation at the end of every step stops the network
  (``Network::_globally_stopped``, what Brian2's own SIGINT handler sets) once
  ``n_steps`` steps are done, so a chunk of any length <= ``chunk`` takes exactly its
  steps; longer sequences are split into chunks (the state carried over as above).
  Inputs and targets are :class:`~.tables.StepTable` static arrays, written per chunk.
* **One program per structure.**  A program is specific to the spec, ``dt``, batch size,
  the set of active learning objects (learning off; SGD or Adam; learned ``tau_m``), the
  recorded variables and the code it is generated from (equations, builder); it is
  compiled on first use into a per-user cache (``$CORTICAL_GLE_CACHE/brian2_standalone``,
  default ``~/.cache/cortical_gle``) under a hash of all of these and reused by every
  later network and process.
* **Exact arithmetic.**  Compiled with ``-O2 -ffp-contract=off`` and without Brian2's
  default ``-ffast-math -march=native`` (which may reorder sums and fuse multiply-adds),
  so the float64 operations are those of the numpy and Cython targets.

Brian2's ``device.run`` is not used: in brian2 2.9.0 it fails with ``ReferenceError``
once a Brian2 object it saw has been garbage-collected (brian2 #1673, fixed in 2.10.0);
this module starts the compiled program itself, with the same arguments.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .network import Brian2GLENetwork

#: C++ flags of the standalone program (see the module docstring); OpenMP off (one thread, deterministic sums)
STANDALONE_COMPILE_ARGS = ["-w", "-O2", "-ffp-contract=off", "-std=c++11"]
#: manifest format of a compiled program in the cache (bump when the layout changes)
_FORMAT = 1
#: most bytes of one input or target table per chunk (sets the chunk length of wide, large-batch networks)
_TABLE_BYTES = 8 << 20


def cache_root() -> Path:
    """Where compiled standalone programs live: ``$CORTICAL_GLE_CACHE/brian2_standalone``."""
    from ...data import default_cache_dir
    return default_cache_dir() / "brian2_standalone"


def check_compiler() -> None:
    """Raise if no C++ compiler and ``make`` are on the path (what Brian2's standalone build runs)."""
    missing = [tool for tool in ("g++", "make") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"Brian2 target 'cpp_standalone' is not available here: {' and '.join(missing)} not found "
                           "(Debian: apt-get install g++ make). Use target='numpy' "
                           "(or CORTICAL_GLE_BRIAN2_TARGET=numpy) "
                           "to run without a compiler")


def _carried(circuit) -> list:
    """``(group, variable name, Variable)`` of every value a program reads from and writes back to Python.

    Every writable array of every group of the circuit, constants included, so a program
    depends only on the structure, never on parameter values.
    """
    from brian2 import NeuronGroup, Synapses
    from brian2.core.variables import ArrayVariable

    out = []
    for obj in sorted(circuit.network.objects, key=lambda o: o.name):
        if not isinstance(obj, (NeuronGroup, Synapses)):
            continue
        for name, var in sorted(obj.variables.items()):
            if isinstance(var, ArrayVariable) and not var.read_only and not var.dynamic \
                    and getattr(var.owner, "name", None) == obj.name and not name.startswith("_"):
                out.append((obj.name, name, var))
    return out


@contextlib.contextmanager
def _standalone_device(directory: Path):
    """Brian2's ``cpp_standalone`` device for one build, then the runtime device again (fresh for the next build)."""
    import brian2
    from brian2.devices.device import get_device, reset_device, set_device

    prefs = brian2.prefs
    sa = prefs.devices.cpp_standalone
    old = (prefs.codegen.cpp.extra_compile_args_gcc, sa.openmp_threads, sa.extra_make_args_unix)
    prefs.codegen.cpp.extra_compile_args_gcc = STANDALONE_COMPILE_ARGS
    sa.openmp_threads = 0
    sa.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]     # Brian2's bare -j starts one compiler per file
    set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    try:
        yield get_device()
    finally:
        get_device().reinit()
        reset_device()
        prefs.codegen.cpp.extra_compile_args_gcc, sa.openmp_threads, sa.extra_make_args_unix = old


def _stop_function():
    """``gle_stop(k, n)``: ends the network loop after the current step once ``k >= n`` (C++ only)."""
    from brian2 import Function

    code = """
    static inline int gle_stop(const int k, const int n)
    {
        if (k >= n)
            Network::_globally_stopped = true;   // checked by Network::run before the next step
        return k >= n;
    }
    """
    f = Function(lambda k, n: np.asarray(k >= n, dtype=np.int32), arg_units=[1, 1], return_unit=1,
                 arg_types=["integer", "integer"], return_type="integer", stateless=False)
    f.implementations.add_implementation("cpp", code, name="gle_stop")
    return f


def compile_program(spec, dt_s: float, unit_s: float, batch: int, active: tuple, monitored: dict, chunk: int,
                    directory: Path) -> dict:
    """Build and compile the program into ``directory``; returns its manifest (also written there)."""
    from brian2 import NeuronGroup, StateMonitor, linked_var

    from .build import ORDER, build_circuit

    directory.mkdir(parents=True, exist_ok=True)
    with _standalone_device(directory) as device:
        c = build_circuit(spec, dt_s, batch, unit_s)
        for obj in c.network.objects:      # build_circuit leaves every learning object off
            if obj.name in active:
                obj.active = True
        steps = NeuronGroup(1, "n_steps : integer (shared)\nk_step : integer (linked)\nstopped : integer (shared)",
                            clock=c.clock, name="gle_chunk", namespace={"gle_stop": _stop_function()})
        steps.k_step = linked_var(c.inputs, "k_step")
        steps.state_updater.active = False
        stopper = steps.run_regularly("stopped = gle_stop(k_step, n_steps)", when="end", order=1, name="gle_chunk_stop")
        monitors = {key: StateMonitor(getattr(c, key[0])[key[1]], names, record=True, when="end",
                                      order=ORDER["monitors"], clock=c.clock, name=f"gle_monitor_{key[0]}_{key[1]}")
                    for key, names in monitored.items()}
        c.network.add(steps, stopper, *monitors.values())
        x_cols, y_cols = batch * spec.n_in, batch * spec.n_out
        c.x_table.set(np.zeros(chunk * x_cols))
        c.y_table.set(np.zeros(chunk * y_cols))
        device.apply_run_args()      # the command line overrides every value set above
        c.network.run(chunk * c.clock.dt, report=None)
        device.build(directory=str(directory), compile=True, run=False, with_output=False, clean=False)
        manifest = {
            "format": _FORMAT, "chunk": chunk, "x_cols": x_cols, "y_cols": y_cols,
            "carried": [{"group": g, "name": n, "file": device.get_array_filename(v), "dtype": np.dtype(v.dtype).str,
                         "size": int(v.size)} for g, n, v in _carried(c) if g != "gle_chunk"],
            "monitors": [{"key": [a, l], "name": n, "file": device.get_array_filename(m.variables[n]),
                          "neurons": int(len(m.source))} for (a, l), m in monitors.items() for n in monitored[(a, l)]],
            "tables": {"x": _table_array(device, "gle_x_table"), "y": _table_array(device, "gle_y_table")},
        }
    from ...io import write_json
    write_json(directory / "manifest.json", manifest)      # last and atomic: marks the program complete
    return manifest


def _table_array(device, name: str) -> str:
    """The static-array file of a StepTable's values in the program (``static_arrays/<this>``)."""
    found = [k for k in device.static_arrays if k.endswith(f"{name}_values")]
    if len(found) != 1:
        raise RuntimeError(f"standalone build: expected one static array for {name}, found {found}")
    return found[0]


def _switchable(circuit, obj) -> bool:
    """Whether ``obj`` is one of the objects the engine switches with learning (the others always run)."""
    learning = [o for v in circuit.learning.values() for o in v] + circuit.tau_learning
    learning += [o for v in circuit.optimizers.values() for o in v]
    return any(obj is o for o in learning)


class StandaloneGLENetwork(Brian2GLENetwork):
    """:class:`~.network.Brian2GLENetwork` whose runs execute a compiled ``cpp_standalone`` program.

    Parameters as :class:`~.network.Brian2GLENetwork`, plus

    chunk : int, optional
        Most steps per program call (longer runs are split, state carried exactly); default and
        upper bound: 4096, fewer where one input table would exceed 8 MB (the program's tables).
    """

    def __init__(self, spec, dt, dtype=np.float64, seed=None, weights=None, biases=None,
                 target: str = "cpp_standalone", chunk: int | None = None):
        check_compiler()
        if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk < 1):
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        self._chunk_option = chunk
        self._programs = {}
        self._workdir = None
        super().__init__(spec, dt, dtype=dtype, seed=seed, weights=weights, biases=biases, target="numpy")
        self.target = "cpp_standalone"
        self.compile_seconds = 0.0      # spent compiling programs for this network (0 when all came from the cache)

    def _capacity(self, batch: int) -> int:
        """Steps one program call can take (its tables' rows): 4096, fewer where a table would exceed 8 MB."""
        cols = batch * max(self._spec.n_in, self._spec.n_out)
        return int(max(1, min(4096, _TABLE_BYTES // (8 * cols))))

    def _monitors(self, monitored: dict) -> dict:
        """What the program records for ``monitored``: nothing, the output rates, or every recordable variable.

        Three variants at most per learning mode, so a program rarely needs compiling for a new record set.
        """
        out = ("pyramidal", self.n_layers - 1)
        if not monitored or monitored == {out: ["r"]}:
            return dict(monitored)
        return {(attr, l): list(names) for l in range(self.n_layers)
                for attr, names in (("pyramidal", ["u", "u_pro", "r"]), ("error", ["v", "err"]))}

    def _program(self, monitored: dict) -> tuple:
        """(directory, manifest) of the program for the current batch, learning objects and monitors."""
        c = self.circuit
        active = tuple(sorted(o.name for o in c.network.objects if getattr(o, "active", True) and _switchable(c, o)))
        chunk = self._capacity(c.batch)
        mon = {k: list(v) for k, v in sorted(monitored.items())}
        # the spec without tau_m, tau_r: the program reads them (like every parameter) from the command line
        structure = self._spec.to_dict()
        structure["layers"] = [{k: v for k, v in layer.items() if k not in ("tau_m", "tau_r")}
                               for layer in structure["layers"]]
        key = json.dumps({"structure": structure, "dt": self.dt, "unit_s": self._unit_s, "batch": c.batch,
                          "active": active, "monitors": [[list(k), v] for k, v in mon.items()], "chunk": chunk,
                          "flags": STANDALONE_COMPILE_ARGS, "format": _FORMAT, "brian2": _brian2_version(),
                          "code": _code_hash()},
                         sort_keys=True, default=str)
        if key in self._programs:
            return self._programs[key]
        directory = cache_root() / hashlib.sha256(key.encode()).hexdigest()[:20]
        manifest_file = directory / "manifest.json"
        if manifest_file.is_file() and (directory / "main").is_file():
            manifest = json.loads(manifest_file.read_text())
        else:
            t0 = time.perf_counter()
            with _cache_lock(directory):
                if manifest_file.is_file() and (directory / "main").is_file():    # built meanwhile by another process
                    manifest = json.loads(manifest_file.read_text())
                else:
                    manifest = compile_program(self._spec, self.dt * self._unit_s, self._unit_s, c.batch, active,
                                               mon, chunk, directory)
            self.compile_seconds += time.perf_counter() - t0
        self._programs[key] = (directory, manifest)
        return self._programs[key]

    def _simulate(self, n_steps: int, monitored: dict) -> dict:
        directory, manifest = self._program(self._monitors(monitored))
        c = self.circuit
        groups = {o.name: o for o in c.network.objects}
        carried = [(groups[e["group"]].variables[e["name"]], e) for e in manifest["carried"]]
        work = self._work(directory)
        rows = manifest["chunk"]
        chunk = min(rows, self._chunk_option or rows)
        x = c.x_table.values.reshape(n_steps, manifest["x_cols"])
        y = c.y_table.values.reshape(n_steps, manifest["y_cols"])
        recorded = {(m["key"][0], m["key"][1], m["name"]): [] for m in manifest["monitors"]}
        for start in range(0, n_steps, chunk):
            n = min(chunk, n_steps - start)
            c.inputs.k_step_ = 0        # the row of this chunk's tables
            healthy = [P.diverged_at_[:] == 0 for P in c.pyramidal]
            for name, table in (("x", x), ("y", y)):
                padded = np.zeros((rows, table.shape[1]))
                padded[:n] = table[start:start + n]
                padded.tofile(work / "static_arrays" / manifest["tables"][name])
            args = [str(directory / "main"), "--results_dir", str(work / "results") + os.sep, f"gle_chunk.n_steps={n}"]
            for var, e in carried:
                f = work / "state" / f"{e['group']}.{e['name']}"
                np.ascontiguousarray(var.get_value(), dtype=e["dtype"]).tofile(f)
                args.append(f"{e['group']}.{e['name']}={f}")
            done = subprocess.run(args, cwd=work, capture_output=True, text=True)
            if done.returncode != 0 or done.stderr.strip() or "Error" in done.stdout:
                raise RuntimeError(f"the Brian2 standalone program {directory / 'main'} failed (exit code "
                                   f"{done.returncode}): {(done.stderr + done.stdout).strip()[-2000:]}")
            for var, e in carried:
                value = np.fromfile(work / "results" / e["file"], dtype=e["dtype"])
                if value.size != e["size"]:
                    raise RuntimeError(f"standalone result {e['group']}.{e['name']} has {value.size} values, "
                                       f"expected {e['size']}")
                var.get_value()[...] = value
            for P, ok in zip(c.pyramidal, healthy):     # a divergence's step in this chunk -> in the run
                P.diverged_at_[:] = np.where(ok & (P.diverged_at_[:] > 0), P.diverged_at_[:] + start, P.diverged_at_[:])
            for m in manifest["monitors"]:
                vals = np.fromfile(work / "results" / m["file"], dtype=np.float64).reshape(-1, m["neurons"])
                if len(vals) != n:
                    raise RuntimeError(f"standalone monitor {m['file']} recorded {len(vals)} steps, expected {n}")
                recorded[(m["key"][0], m["key"][1], m["name"])].append(vals)
        monitors = {}
        for (attr, l, name), parts in recorded.items():
            mon = monitors.setdefault((attr, l), SimpleNamespace(record_variables=[]))
            mon.record_variables.append(name)
            setattr(mon, name + "_", np.concatenate(parts).T)
        return monitors

    def _work(self, directory: Path) -> Path:
        """This network's run directory for ``directory``'s program: its own input tables and results.

        The program reads ``static_arrays/`` relative to its working directory: links to the
        program's static arrays, except the two tables, which are this network's files.
        """
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="gle_brian2_standalone_")
        work = Path(self._workdir.name) / directory.name
        if not work.is_dir():
            for sub in ("static_arrays", "state", "results"):
                (work / sub).mkdir(parents=True)
            tables = set(json.loads((directory / "manifest.json").read_text())["tables"].values())
            for f in (directory / "static_arrays").iterdir():
                if f.name not in tables and not f.name.endswith(".lock"):
                    (work / "static_arrays" / f.name).symlink_to(f)
        return work

    @classmethod
    def load(cls, path, target: str | None = None) -> "StandaloneGLENetwork":
        """A network saved by any Brian2 rate target, continued on ``cpp_standalone``."""
        return super().load(path, target="cpp_standalone")


def _code_hash() -> str:
    """A hash of what a program is generated from: the equations and the modules that build the circuit."""
    from ...resources import data_dir

    here = Path(__file__).parent
    files = [data_dir("models") / "brian2" / "gle_rate.py"] + [here / f for f in ("build.py", "tables.py",
                                                                                  "standalone.py")]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def _brian2_version() -> str:
    import brian2
    return brian2.__version__


@contextlib.contextmanager
def _cache_lock(directory: Path):
    """An exclusive lock on ``directory``'s build (processes compiling the same program wait for one another)."""
    import fcntl

    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(str(directory) + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


__all__ = ["StandaloneGLENetwork", "compile_program", "cache_root", "check_compiler", "STANDALONE_COMPILE_ARGS"]
