"""Turn a NetworkSpec into Brian2 groups, synapses and a ``Network`` (the microcircuit of docs/brian2.md).

The equations come from ``models/brian2/gle_rate.py``; this module only creates the
objects, connects them (batch replicas sharing one weight per connection) and gives
every update its slot.  Object names are fixed per role (``gle_pyramidal_0``, ...), so
a second network with the same structure reuses the compiled code; the schedule never
depends on them (every pair of updates that shares data has distinct ``when``/``order``).
"""
from __future__ import annotations

import re
import runpy
from dataclasses import dataclass, field

import numpy as np
from brian2 import BrianLogger, Clock, Network, NeuronGroup, Synapses, linked_var, second
from brian2.groups.group import CodeRunner

from ...resources import data_dir
from .tables import StepTable

_EQ = {}
# a circuit replaced by one for another batch size is deleted unrun; that is intended, not a forgotten object
BrianLogger.suppress_name("unused_brian_object")


def equations() -> dict:
    """The equation strings of ``models/brian2/gle_rate.py`` (read once)."""
    if not _EQ:
        _EQ.update({k: v for k, v in runpy.run_path(str(data_dir("models") / "brian2" / "gle_rate.py")).items()
                    if k.isupper()})
    return _EQ


#: ``order`` within the slots of one Euler step (the table in docs/brian2.md#scheduling-one-euler-step); summed
#: variables run in slot 'groups' at their target group's order minus one (Brian2's rule)
ORDER = {"neurons": 10, "pyramidal_update": 20, "holders": 30, "counter": 31, "monitors": 10}


@dataclass
class Circuit:
    """The Brian2 objects of one network for one batch size."""

    batch: int
    clock: Clock
    inputs: NeuronGroup
    pyramidal: list
    error: list
    weight_holders: list
    param_holders: list
    forward: list
    feedback: list
    learning: dict = field(default_factory=dict)     # name -> list of objects active only while learning
    tau_learning: list = field(default_factory=list)  # active only while tau_m learns
    optimizers: dict = field(default_factory=dict)   # (what, kind) -> list of run_regularly objects
    counter: NeuronGroup | None = None
    x_table: StepTable | None = None
    y_table: StepTable | None = None
    network: Network | None = None

    @property
    def n_layers(self) -> int:
        return len(self.pyramidal)


def phi_code(name: str) -> tuple:
    """(phi, phi') of the prospective potential as Brian2 expressions (table names ``x``, ``r`` replaced)."""
    fn, prime = equations()["PHI"][name]
    ident = re.compile(r"\b([xr])\b")
    sub = lambda s: ident.sub(lambda m: "u_pro" if m.group(1) == "x" else "r_next", s)  # noqa: E731
    return sub(fn), sub(prime)


def build_circuit(spec, dt_s: float, batch: int, time_unit_s: float) -> Circuit:
    """All groups and synapses for ``spec`` with ``batch`` replicas (parameters zero until set)."""
    eq = equations()
    clock = Clock(dt=dt_s * second, name="gle_clock")
    sizes = spec.sizes
    L = len(spec.layers)
    x_table, y_table = StepTable("gle_x_table"), StepTable("gle_y_table")
    ns = {"x_table": x_table, "y_table": y_table}

    inputs = NeuronGroup(batch * spec.n_in, eq["INPUT"], clock=clock, name="gle_input", namespace=ns)
    inputs.n_cols = batch * spec.n_in
    objs = [inputs]
    objs.append(inputs.run_regularly(eq["INPUT_UPDATE"], when="start", order=0, name="gle_input_update"))
    objs.append(inputs.run_regularly(eq["INPUT_ADVANCE"], when="end", order=0, name="gle_input_advance"))

    pyr, err, wh, ph, fwd, fb = [], [], [], [], [], []
    learning = {"weights": [], "params": []}
    tau_learning, optimizers = [], {}
    for l, layer in enumerate(spec.layers):
        n, n_pre, N = layer.size, sizes[l], batch * layer.size
        out = l == L - 1
        # parameter holder (one element per neuron, shared by the replicas)
        p = NeuronGroup(n, eq["PARAM_HOLDER"], clock=clock, order=ORDER["holders"], name=f"gle_params_{l}")
        p.learn_bias = float(layer.bias)
        p.time_unit = time_unit_s * second
        p.tau_r = layer.tau_r * time_unit_s * second
        # weight holder (one element per weight W[post, pre])
        w = NeuronGroup(n * n_pre, eq["WEIGHT_HOLDER"], clock=clock, order=ORDER["holders"],
                        name=f"gle_weights_{l}")
        phi, phi_prime = phi_code(layer.phi)
        P = NeuronGroup(N, eq["PYRAMIDAL"], clock=clock, order=ORDER["neurons"], name=f"gle_pyramidal_{l}")
        E = NeuronGroup(N, eq["ERROR"] + (eq["ERROR_OUTPUT"] if out else ""), clock=clock, order=ORDER["neurons"],
                        name=f"gle_error_{l}", namespace=ns)
        neuron = np.tile(np.arange(n), batch)          # replica b, neuron k at index b*n + k
        for G in (P, E):
            G.tau_m = linked_var(p, "tau_m", index=neuron)
            G.tau_r = linked_var(p, "tau_r", index=neuron)
        P.b = linked_var(p, "b", index=neuron)
        P.err = linked_var(E, "err")
        E.rp = linked_var(P, "rp")
        P.gamma = float(spec.gamma)
        P.k_step = linked_var(inputs, "k_step")
        if out:
            E.r_soma = linked_var(P, "r")
            E.k_step = linked_var(inputs, "k_step")
            E.beta = float(spec.beta)
            E.n_cols = N
        objs += [p, w, P, E]
        update = eq["ERROR_UPDATE"][bool(spec.prospective_errors)]
        objs.append(E.run_regularly((eq["ERROR_OUTPUT_TOP"] + "\n" if out else "") + update, when="before_groups",
                                    order=0, name=f"gle_error_update_{l}"))
        objs.append(P.run_regularly(eq["PYRAMIDAL_UPDATE"].format(phi=phi, phi_prime=phi_prime), when="groups",
                                    order=ORDER["pyramidal_update"], name=f"gle_pyramidal_update_{l}"))
        objs.append(P.run_regularly(eq["PYRAMIDAL_COMMIT"], when="end", order=0, name=f"gle_pyramidal_commit_{l}"))

        # bottom-up synapses onto the basal dendrites, replica by replica
        pre_group = inputs if l == 0 else pyr[l - 1]
        b_idx = np.repeat(np.arange(batch), n * n_pre)
        post_k = np.tile(np.repeat(np.arange(n), n_pre), batch)
        pre_k = np.tile(np.tile(np.arange(n_pre), n), batch)
        S = Synapses(pre_group, P, eq["FORWARD"], clock=clock, name=f"gle_forward_{l}")
        S.connect(i=b_idx * n_pre + pre_k, j=b_idx * n + post_k)
        S.k_w = post_k * n_pre + pre_k
        S.w = linked_var(w, "w", index="k_w")
        fwd.append(S)
        objs.append(S)
        if l > 0:   # top-down synapses between error neurons: err_l reaches layer l-1 through W_l^T
            F = Synapses(E, err[l - 1], eq["FEEDBACK"], clock=clock, name=f"gle_feedback_{l}")
            F.connect(i=b_idx * n + post_k, j=b_idx * n_pre + pre_k)
            F.k_w = post_k * n_pre + pre_k
            F.w_fb = linked_var(w, "w", index="k_w")
            fb.append(F)
            objs.append(F)
        # plasticity: batch sums of the local products, then the optimizers
        C = Synapses(E, w, eq["WEIGHT_GRADIENT"], clock=clock, name=f"gle_weight_gradient_{l}")
        C.connect(i=b_idx * n + post_k, j=post_k * n_pre + pre_k)
        C.k_in = b_idx * n_pre + pre_k
        C.r_in = linked_var(pre_group, "r", index="k_in")
        D = Synapses(P, p, eq["PARAM_GRADIENT"], clock=clock, name=f"gle_param_gradient_{l}")
        D.connect(i=np.arange(N), j=neuron)
        learning["weights"].append(C)
        learning["params"].append(D)
        for kind, template in eq["OPTIMIZER"].items():
            opt = dict(m="m_{}", s="s_{}", t="adam_step", lr="lr", scale="1")
            code_w = template.format(p="w", g=eq["GRAD_W"], **{k: v.format("w") for k, v in opt.items()})
            code_b = template.format(p="b", g=eq["GRAD_B"], **{k: v.format("b") for k, v in opt.items()})
            code_tau = template.format(p="tau_m", g=eq["GRAD_TAU"], m="m_tau", s="s_tau", t="adam_step_tau",
                                       lr="lr_tau", scale="time_unit") + eq["TAU_CLAMP"]
            for what, G, code in (("weights", w, code_w), ("biases", p, code_b), ("tau_m", p, code_tau)):
                optimizers.setdefault((what, kind), []).append(
                    G.run_regularly(code, when="after_groups", order=0, name=f"gle_{kind}_{what}_{l}"))
        pyr.append(P)
        err.append(E)
        wh.append(w)
        ph.append(p)
    # the clamp counter: numpy's tau_clamp_events (steps on which any tau_m was held at tau_min)
    counter = NeuronGroup(1, "\n".join([f"n_low{l} : 1" for l in range(L)] + ["clamp_events : integer"]),
                          clock=clock, order=ORDER["holders"], name="gle_clamp_counter")
    any_low = " + ".join(f"n_low{l}" for l in range(L))
    tau_learning.append(counter.run_regularly(f"clamp_events = clamp_events + int({any_low} > 0)", when="groups",
                                              order=ORDER["counter"], name="gle_clamp_count"))
    for l, p in enumerate(ph):
        K = Synapses(p, counter, eq["CLAMP_COUNTER_GRADIENT"].format(l=l), clock=clock, name=f"gle_clamp_sum_{l}")
        K.connect(i=np.arange(len(p)), j=0)
        tau_learning.append(K)
    circuit = Circuit(batch, clock, inputs, pyr, err, wh, ph, fwd, fb, learning, tau_learning, optimizers, counter,
                      x_table, y_table)
    everything = objs + learning["weights"] + learning["params"] + tau_learning + [counter]
    everything += [o for objs_ in optimizers.values() for o in objs_]
    for o in learning["weights"] + learning["params"] + tau_learning + [o for v in optimizers.values() for o in v]:
        o.active = False
    for o in everything:
        if isinstance(o, NeuronGroup):
            o.state_updater.active = False     # no differential equations: every update is explicit code
    circuit.network = Network(*everything, name="gle_network")
    for obj in circuit.network.sorted_objects:
        if isinstance(obj, CodeRunner):
            obj.before_run = _reuse_code_objects(obj, circuit)
    return circuit


def _reuse_code_objects(obj, circuit: Circuit):
    """``obj.before_run`` that regenerates code only when something it was generated for changed.

    Brian2's runtime mode regenerates every code object at every ``Network.run`` (~0.2 s for a
    small circuit, most of it hashing for its caches), which dominates the many short runs of
    a training loop.  Here nothing a code object is generated from changes between runs:
    equations, names and sizes are fixed per circuit, constants (``(shared, constant)``) are
    set before the first run, every other value lives in arrays that runs share, and the
    input tables are refilled in place.  The code is generated again when the target or an
    input table's allocation changes.
    """
    import brian2

    full = obj.before_run

    def before_run(run_namespace):
        key = (brian2.prefs.codegen.target, circuit.x_table.generation, circuit.y_table.generation)
        if getattr(obj, "_gle_code_key", None) == key and obj._code_objects:
            for codeobj in obj._code_objects:
                codeobj.before_run()
            return
        full(run_namespace)
        obj._gle_code_key = key

    return before_run


__all__ = ["Circuit", "build_circuit", "equations", "phi_code", "ORDER"]
