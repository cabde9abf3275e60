"""A GLE network simulated by Brian2, step for step equal to the numpy engine (the engine contract).

Brian2 holds the network (:mod:`.build` creates it from ``models/brian2/gle_rate.py``);
this class sets parameters and inputs, runs, and reads back.  Parameters live in
Brian2's holder groups (so learning happens inside the simulation); the dynamic
state lives in the neuron groups.  A batch of ``B`` samples is ``B`` replicas of the
circuit that share every weight, bias and time constant, so learning follows the
batch-mean gradient exactly as the numpy engine does.

Refused by name: cross-entropy loss (a softmax couples the output neurons; the
numpy engine has it), feedback other than ``transpose``, learned ``tau_r``, float32
and spiking networks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json

import numpy as np
import quantities as pq

from ...io import atomic_savez, read_npz
from ...spec import NetworkSpec
from ...units import to_magnitude
from ..numpy_.dynamics import DivergenceError
from ..numpy_.losses import loss_and_dloss
from ..numpy_.network import RECORDABLE, _assign, check_sequence, default_weights
from ..numpy_.optim import make_optimizer
from .build import ORDER, build_circuit

#: where each recordable variable lives: (group list attribute, Brian2 variable)
_RECORD_SOURCE = {"r": ("pyramidal", "r"), "u": ("pyramidal", "u"), "u_pro": ("pyramidal", "u_pro"),
                  "v": ("error", "v"), "e": ("error", "err")}
#: the dynamic state: group list attribute -> variables (all start at zero, docs/model.md#discrete-time)
_STATE = {"pyramidal": ("u", "du", "u_pro", "r", "rp", "r_next", "rp_next", "I_basal"),
          "error": ("v", "err", "top")}


#: C++ flags of the Cython target: IEEE arithmetic as numpy's (Brian2's default adds -ffast-math, which
#: may reorder sums) and about half the compile time of -O3; at GLE's sizes a step costs mostly Python dispatch
CYTHON_COMPILE_ARGS = ["-w", "-O1"]


@contextlib.contextmanager
def _brian_run_settings(target: str):
    """Brian2's code-generation target and flags for one run, without its per-run ``gc.collect()``.

    ``Network.run`` calls ``gc.collect()`` only to warn about objects left out of the
    network; with a test suite's heap that costs ~0.1 s per call, more than a
    1,000-step run of a small network.  The network here is built explicitly.
    """
    import brian2
    from brian2.core import network as bn

    prefs = brian2.prefs
    old = prefs.codegen.target, prefs.codegen.cpp.extra_compile_args_gcc, bn.gc
    prefs.codegen.target = target
    prefs.codegen.cpp.extra_compile_args_gcc = CYTHON_COMPILE_ARGS
    bn.gc = type("NoCollect", (), {"collect": staticmethod(lambda *a: 0)})
    try:
        yield
    finally:
        prefs.codegen.target, prefs.codegen.cpp.extra_compile_args_gcc, bn.gc = old


class Brian2GLENetwork:
    """A layered GLE network in Brian2 (docs/model.md#discrete-time), with the numpy engine's API.

    Parameters
    ----------
    spec : NetworkSpec
    dt : float, quantity or str
        Time step (a plain number is in ``spec.time_unit``); must not exceed any time constant.
    dtype : numpy dtype
        ``float64`` only.
    seed : int, optional
        Seeds the default weights (the numpy engine's draw).
    weights, biases : list of arrays, optional
        Initial ``W_l`` (``(n_l, n_{l-1})``) and ``b_l``.
    target : {'cython', 'numpy'}
        Brian2's code generation (see :mod:`cortical_gle.engines.brian2_`).
    """

    #: a saved file holds parameters, optimizer and dynamic state (engines/base.py)
    saves_state = True

    def __init__(self, spec: NetworkSpec, dt, dtype=np.float64, seed=None, weights=None, biases=None,
                 target: str = "cython"):
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        check_spec(spec)
        if np.dtype(dtype) != np.float64:
            raise ValueError(f"the brian2 engine computes in float64; dtype {np.dtype(dtype)} is not available "
                             "(use the numpy engine for float32)")
        dt = float(to_magnitude(dt, spec.time_unit, "dt"))
        spec.check_dt(dt)
        self._spec, self.dt, self.dtype, self.target = spec, dt, np.dtype(np.float64), target
        self._unit_s = float(pq.Quantity(1.0, spec.time_unit).rescale(pq.s).magnitude)
        if weights is None:
            weights, b0 = default_weights(spec, np.random.default_rng(seed))
            biases = b0 if biases is None else biases
        W = [np.zeros((n, m)) for m, n in zip(spec.sizes[:-1], spec.sizes[1:])]
        b = [np.zeros(n) for n in spec.sizes[1:]]
        _assign("weights", weights, W)
        if biases is not None:
            _assign("biases", biases, b)
        self.optimizer = None        # the learning settings once configured (a dict)
        self.tau_min = None
        self._clamp_events = 0
        self.steps_done = 0
        self._has_state = False
        self.circuit = self._build(1)
        for l, layer in enumerate(spec.layers):
            self.circuit.param_holders[l].tau_m_ = layer.tau_m * self._unit_s
        self._write_params(W, b)

    # -- parameters -----------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self._spec.layers)

    @property
    def batch_size(self) -> int:
        return self.circuit.batch

    @property
    def spec(self) -> NetworkSpec:
        """The description with the current (learned) ``tau_m``."""
        return spec_with_tau_m(self._spec, self.tau_m)

    @property
    def weights(self) -> list:
        """Copies of ``W_l`` (Brian2's weight holders hold the weights)."""
        return [w.w_[:].reshape(n, m).copy() for w, m, n in
                zip(self.circuit.weight_holders, self._spec.sizes[:-1], self._spec.sizes[1:])]

    @property
    def biases(self) -> list:
        return [p.b_[:].copy() for p in self.circuit.param_holders]

    @property
    def tau_m(self) -> list:
        return [p.tau_m_[:] / self._unit_s for p in self.circuit.param_holders]

    @property
    def tau_r(self) -> list:
        return [p.tau_r_[:] / self._unit_s for p in self.circuit.param_holders]

    @property
    def tau_clamp_events(self) -> int:
        """Steps on which a learned ``tau_m`` was held at ``tau_min`` (the numpy engine's count)."""
        return self._clamp_events + int(self.circuit.counter.clamp_events_[0])

    def set_weights(self, weights, biases=None) -> None:
        """Set ``W_l`` (and ``b_l``); shapes and finiteness are checked first."""
        W = self.weights
        _assign("weights", weights, W)
        b = None
        if biases is not None:
            b = self.biases
            _assign("biases", biases, b)
        self._write_params(W, b)

    def _write_params(self, W, b=None) -> None:
        for l in range(self.n_layers):
            self.circuit.weight_holders[l].w_ = np.ravel(W[l])
            if b is not None:
                self.circuit.param_holders[l].b_ = b[l]

    def set_tau_m(self, tau_m) -> None:
        new = []
        for l, (t, p) in enumerate(zip(tau_m, self.circuit.param_holders)):
            t = np.broadcast_to(np.asarray(t, dtype=float), (len(p),))
            if np.any(t < self.dt):
                raise ValueError(f"tau_m of layer {l} must be >= dt = {self.dt}, got {t.min()}")
            new.append(t)
        for t, p in zip(new, self.circuit.param_holders):
            p.tau_m_ = t * self._unit_s

    # -- learning -------------------------------------------------------------
    def configure_learning(self, optimizer: str = "adam", lr: float = 1e-3, learn_tau: bool = False,
                           tau_optimizer: str = "sgd", lr_tau: float = 1e-3, tau_min: float | None = None,
                           learn_tau_r: bool = False, **opt_kwargs) -> None:
        """Per-step ``'sgd'`` or ``'adam'`` on W and b (and ``tau_m``), as the numpy engine's optimizers.

        Settings are checked by the numpy engine's own optimizer classes; Adam's state
        and the clamp count start from zero, as on the numpy engine.
        """
        if learn_tau_r:
            raise ValueError("learn_tau_r is not available on the brian2 engine (the tau_r rule of "
                             "docs/hypotheses.md runs on the numpy engine)")
        if tau_min is not None and tau_min < self.dt:
            raise ValueError(f"tau_min = {tau_min} must be >= dt = {self.dt}")
        w_opt = make_optimizer(optimizer, 1, lr, **opt_kwargs)       # validates names, lr, betas, eps
        t_opt = make_optimizer(tau_optimizer, 1, lr_tau)
        self.optimizer = {"name": optimizer, "lr": float(lr), "learn_tau": bool(learn_tau),
                          "tau_optimizer": tau_optimizer, "lr_tau": float(lr_tau), "tau_min": tau_min,
                          "betas": list(getattr(w_opt, "betas", (0.9, 0.999))), "eps": getattr(w_opt, "eps", 1e-8)}
        self.tau_min = tau_min
        tb = getattr(t_opt, "betas", (0.9, 0.999))
        if learn_tau and tau_optimizer == "adam" and optimizer == "adam" and \
                (tuple(tb) != tuple(self.optimizer["betas"]) or t_opt.eps != self.optimizer["eps"]):
            raise ValueError("the brian2 engine uses one set of Adam betas/eps for weights and tau_m")
        self._clamp_events = 0
        c = self.circuit
        c.counter.clamp_events_ = 0
        for w, p in zip(c.weight_holders, c.param_holders):
            for G, names in ((w, ("m_w", "s_w")), (p, ("m_b", "s_b", "m_tau", "s_tau", "clamped"))):
                for v in names:
                    setattr(G, v + "_", 0.0)
            w.adam_step_ = 0
            p.adam_step_ = 0
            p.adam_step_tau_ = 0
            w.lr_, p.lr_, p.lr_tau_ = lr, lr, lr_tau
            for G in (w, p):
                G.beta1_, G.beta2_ = self.optimizer["betas"]
                G.eps_ = self.optimizer["eps"]
            p.tau_min_ = (tau_min or 0.0) * self._unit_s

    def _activate_learning(self, on: bool) -> None:
        c, opt = self.circuit, self.optimizer or {}
        learn_tau = on and bool(opt.get("learn_tau"))
        for o in c.learning["weights"] + c.learning["params"]:
            o.active = on
        for o in c.tau_learning:
            o.active = learn_tau
        for (what, kind), objs in c.optimizers.items():
            want = {"weights": opt.get("name"), "biases": opt.get("name"), "tau_m": opt.get("tau_optimizer")}[what]
            for o in objs:
                o.active = on and kind == want and (what != "tau_m" or learn_tau)

    # -- state ----------------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """Zero the dynamic state for a batch (parameters and optimizer kept); a new batch size rebuilds."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size != self.circuit.batch:
            self._rebuild(int(batch_size))
        c = self.circuit
        for attr, names in _STATE.items():
            for G in getattr(c, attr):
                for v in names:
                    setattr(G, v + "_", 0.0)
        c.inputs.r_ = 0.0
        self._has_state = True

    def _build(self, batch: int):
        # Synapses.connect runs code once, at creation: the numpy target does that without compiling
        with _brian_run_settings("numpy"):
            return build_circuit(self._spec, self.dt * self._unit_s, batch, self._unit_s)

    def _rebuild(self, batch: int) -> None:
        old, new = self.circuit, self._build(batch)
        for a, b in zip(old.weight_holders + old.param_holders, new.weight_holders + new.param_holders):
            for name in a.variables:
                var = a.variables[name]
                if not name.startswith("_") and name not in ("N", "i", "t", "dt", "t_in_timesteps") \
                        and not getattr(var, "read_only", False) and hasattr(var, "get_value"):
                    getattr(b.variables[name], "set_value")(np.array(var.get_value()))
        new.counter.clamp_events_ = old.counter.clamp_events_[:]
        self.circuit = new

    def state_snapshot(self):
        """A copy of the dynamic state (``None`` before the first run), for :meth:`restore_state`."""
        if not self._has_state:
            return None
        c = self.circuit
        snap = {"batch": c.batch, "inputs.r": c.inputs.r_[:].copy()}
        for attr, names in _STATE.items():
            for l, G in enumerate(getattr(c, attr)):
                for v in names:
                    snap[f"{attr}{l}.{v}"] = getattr(G, v + "_")[:].copy()
        return snap

    def restore_state(self, snapshot) -> None:
        """Return to a :meth:`state_snapshot` (parameters and optimizer untouched)."""
        if snapshot is None:
            self._has_state = False
            return
        if snapshot["batch"] != self.circuit.batch:
            self._rebuild(snapshot["batch"])
        c = self.circuit
        c.inputs.r_ = snapshot["inputs.r"]
        for attr, names in _STATE.items():
            for l, G in enumerate(getattr(c, attr)):
                for v in names:
                    setattr(G, v + "_", snapshot[f"{attr}{l}.{v}"])
        self._has_state = True

    def silence_errors(self) -> None:
        """Zero the error neurons (``v``, ``err``, ``top``): the network without a teacher."""
        for E in self.circuit.error:
            E.v_, E.err_, E.top_ = 0.0, 0.0, 0.0

    @property
    def output(self) -> np.ndarray:
        """``r_L(t)`` now, shape ``(batch, n_out)``."""
        return self.circuit.pyramidal[-1].r_[:].reshape(self.circuit.batch, -1).copy()

    # -- simulation -----------------------------------------------------------
    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True,
            progress: bool = False):
        """Run ``x`` (steps, batch, n_in); returns what the numpy engine returns (engines/base.py).

        Entry ``t`` of each record is the value after step ``t``; ``loss[t]`` is the loss of
        ``r_L(t)`` against ``target[t]`` (computed from the recorded outputs).
        """
        x, target = check_sequence(self._spec, x, target, record, np.float64, RECORDABLE)
        n_steps, B = x.shape[:2]
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        if reset or not self._has_state:
            self.reset(B)
        elif B != self.circuit.batch:
            raise ValueError(f"x has batch {B}, the network's state has batch {self.circuit.batch} (use reset=True)")
        c = self.circuit
        c.x_table.set(x.reshape(n_steps, -1))
        # no target: a table of zeros all the same (the code reads it before multiplying by has_target = 0)
        c.y_table.set(np.zeros((n_steps, B * self._spec.n_out)) if target is None
                      else np.asarray(target, dtype=float).reshape(n_steps, -1))
        c.error[-1].has_target_ = 0.0 if target is None else 1.0
        c.inputs.k_step_ = 0
        for G in c.weight_holders + c.param_holders:
            G.grad_scale_ = -1.0 / B
        for P in c.pyramidal:
            P.diverged_at_ = 0
        self._activate_learning(bool(learn))
        r_before = self.output if ("loss" in record and target is not None) else None
        wanted = [k for k in record if k in _RECORD_SOURCE]
        wanted_out = "r_out" in record or r_before is not None      # the loss is computed from r_out
        monitored = {}      # (group list attribute, layer) -> Brian2 variables to record
        for l in range(self.n_layers):
            for attr in ("pyramidal", "error"):
                names = [_RECORD_SOURCE[k][1] for k in wanted if _RECORD_SOURCE[k][0] == attr]
                if attr == "pyramidal" and l == self.n_layers - 1 and wanted_out and "r" not in names:
                    names.append("r")
                if names:
                    monitored[(attr, l)] = names
        monitors = self._simulate(n_steps, monitored)
        out = self._collect(record, monitors, n_steps, B, target, r_before)
        self.steps_done += n_steps
        self._after_run(learn, self.steps_done - n_steps)
        return out

    def _simulate(self, n_steps: int, monitored: dict) -> dict:
        """Run the circuit ``n_steps`` steps; the state monitors of ``monitored``, by the same keys.

        A monitor has ``<var>_`` arrays of shape ``(neurons, steps)`` (entry ``t``: after step ``t``).
        """
        from brian2 import StateMonitor

        c = self.circuit
        monitors = {(attr, l): StateMonitor(getattr(c, attr)[l], names, record=True, when="end",
                                            order=ORDER["monitors"], clock=c.clock, name=f"gle_monitor_{attr}_{l}")
                    for (attr, l), names in monitored.items()}
        net = c.network
        net.add(*monitors.values())
        try:
            with _brian_run_settings(self.target), np.errstate(over="ignore", invalid="ignore"):
                net.run(n_steps * c.clock.dt, report=None)
        finally:
            net.remove(*monitors.values())
        return monitors

    def _after_run(self, learn, first_step: int) -> None:
        c = self.circuit
        diverged = first_divergence([P.diverged_at_[:] for P in c.pyramidal])
        if diverged is not None:
            raise DivergenceError(diverged[0], first_step + diverged[1])
        if learn and self.optimizer.get("learn_tau"):
            # the last step's clamps are counted by the next step's counter: count them here instead
            if any(np.any(p.clamped_[:] > 0) for p in c.param_holders):
                self._clamp_events += 1
            for p in c.param_holders:
                p.clamped_ = 0.0
            if self.tau_min is None:
                for l, t in enumerate(self.tau_m):
                    if np.any(t < self.dt):
                        raise ValueError(f"learned tau_m of layer {l} fell to {t.min():g} < dt = {self.dt:g}; "
                                         "lower lr_tau")

    def _collect(self, record, monitors, n_steps, B, target, r_before) -> dict:
        L, N, sizes = self.n_layers, max(self._spec.sizes[1:]), self._spec.sizes
        out = {}
        for k in record:
            if k in _RECORD_SOURCE:
                attr, var = _RECORD_SOURCE[k]
                arr = np.zeros((n_steps, L, B, N))
                for l in range(L):
                    vals = getattr(monitors[(attr, l)], var + "_")       # (neurons, steps)
                    arr[:, l, :, : sizes[l + 1]] = vals.T.reshape(n_steps, B, sizes[l + 1])
                out[k] = arr
        r_out = None
        if ("pyramidal", L - 1) in monitors and "r" in monitors[("pyramidal", L - 1)].record_variables:
            r_out = monitors[("pyramidal", L - 1)].r_.T.reshape(n_steps, B, self._spec.n_out).copy()
        if "r_out" in record:
            out["r_out"] = r_out
        if "loss" in record:
            loss = np.full(n_steps, np.nan)
            if target is not None:
                prev = np.concatenate([r_before[None], r_out[:-1]], axis=0)
                for t in range(n_steps):
                    loss[t] = loss_and_dloss("mse", prev[t], target[t])[0]
            out["loss"] = loss
        return {k: out[k] for k in record}

    # -- files ----------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Spec, parameters (in Brian2's SI values, for an exact continuation), optimizer and state, atomically."""
        c = self.circuit
        meta = {"spec": self.spec.to_dict(), "dt": self.dt, "engine": "brian2", "target": self.target,
                "optimizer": self.optimizer, "steps_done": self.steps_done, "tau_clamp_events": self.tau_clamp_events,
                "has_state": self._has_state, "batch": c.batch}
        arrays = {"meta": np.asarray(json.dumps(meta)), "extra": np.asarray(json.dumps(extra or {}))}
        for l, (w, p) in enumerate(zip(c.weight_holders, c.param_holders)):
            for name in ("w", "m_w", "s_w", "adam_step"):
                arrays[f"weights{l}.{name}"] = np.asarray(getattr(w, name + "_")[:])
            for name in ("b", "tau_m", "tau_r", "m_b", "s_b", "m_tau", "s_tau", "adam_step", "adam_step_tau"):
                arrays[f"params{l}.{name}"] = np.asarray(getattr(p, name + "_")[:])
        snap = self.state_snapshot()
        if snap is not None:
            for k, v in snap.items():
                if k != "batch":
                    arrays["state." + k] = v
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path, target: str | None = None) -> "Brian2GLENetwork":
        """Rebuild a network saved with :meth:`save` (parameters, optimizer and state)."""
        data, meta = read_npz(path, "cortical_gle brian2 network file")
        try:
            spec = NetworkSpec.from_dict(meta["spec"])
            net = cls(spec, meta["dt"], seed=0, target=target or meta.get("target", "cython"))
            if meta.get("optimizer"):
                o = meta["optimizer"]
                kw = {"betas": tuple(o["betas"]), "eps": o["eps"]} if o["name"] == "adam" else {}
                net.configure_learning(o["name"], o["lr"], o["learn_tau"], o["tau_optimizer"], o["lr_tau"],
                                       o["tau_min"], **kw)
            if meta.get("has_state"):
                net.reset(int(meta["batch"]))
            c = net.circuit
            for l, (w, p) in enumerate(zip(c.weight_holders, c.param_holders)):
                for name in ("w", "m_w", "s_w", "adam_step"):
                    setattr(w, name + "_", data[f"weights{l}.{name}"])
                for name in ("b", "tau_m", "tau_r", "m_b", "s_b", "m_tau", "s_tau", "adam_step", "adam_step_tau"):
                    setattr(p, name + "_", data[f"params{l}.{name}"])
            if meta.get("has_state"):
                snap = {"batch": int(meta["batch"])}
                snap.update({k[len("state."):]: v for k, v in data.items() if k.startswith("state.")})
                net.restore_state(snap)
        except KeyError as err:
            raise ValueError(f"{path}: not a complete cortical_gle brian2 network file (missing {err})") from None
        net.steps_done = int(meta["steps_done"])
        net._clamp_events = int(meta.get("tau_clamp_events", 0))
        net.extra = json.loads(str(data["extra"])) if "extra" in data else {}
        return net


def first_divergence(diverged_at) -> tuple | None:
    """``(layer, step)`` of the first non-finite ``u_pro`` from the layers' ``diverged_at`` arrays, or ``None``.

    ``diverged_at`` is 1 + the step of the run at which a neuron's ``u_pro`` was first
    non-finite (0: never).  All layers advance synchronously, so of the layers that
    diverged at the earliest step the lowest is named, as the numpy engine names it.
    """
    first = [(int(d[d > 0].min()) - 1, l) for l, d in enumerate(map(np.asarray, diverged_at)) if np.any(d > 0)]
    if not first:
        return None
    step, layer = min(first)
    return layer, step


def spec_with_tau_m(spec: NetworkSpec, taus) -> NetworkSpec:
    """``spec`` with the per-layer ``tau_m`` in ``taus`` (the spec itself when they are its own)."""
    if all(np.array_equal(t, layer.tau_m) for t, layer in zip(taus, spec.layers)):
        return spec
    layers = tuple(dataclasses.replace(layer, tau_m=t) for layer, t in zip(spec.layers, taus))
    return dataclasses.replace(spec, layers=layers)


def check_spec(spec: NetworkSpec) -> None:
    """Refuse, by name, what the Brian2 rate circuit does not implement."""
    if getattr(spec, "spiking", False):
        raise ValueError("Brian2GLENetwork is the rate circuit; a spec with spiking=True is built by "
                         "get_engine('brian2').build (the spiking circuit, cortical_gle.engines.brian2_.spiking)")
    if spec.loss != "mse":
        raise ValueError(f"the brian2 engine supports loss 'mse' only, got {spec.loss!r} (a softmax output couples "
                         "the output neurons; cross-entropy runs on the numpy engine)")
    spec.require_exact_feedback("brian2")
    spec.require_paper_error_units("brian2")
