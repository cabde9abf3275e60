r"""The spiking GLE microcircuit in Brian2 (``spiking: true``; equations in ``models/brian2/spiking.py``).

Pyramidal cells emit Poisson spikes at :math:`r_\mathrm{max}\varphi(\breve u)`; the next layer's
basal dendrites sum synaptic traces of those spikes, whose mean is the rate; error neurons
stay signed rate units (docs/brian2-spiking.md says why).  Per Euler step ``dt`` and layer:

.. math::

    e &= v + \tau_m \dot v, \quad \dot v = (\mathrm{top}\,\varphi'(\breve u(t)) - v)/\tau_r \\
    \dot u &= \Big(\sum_j w_{ij} s_j(t) + b + \gamma e - u\Big)/\tau_m, \quad
        \breve u = u + \tau_r \dot u, \quad
        P(\text{spike in } [t, t+dt)) = r_\mathrm{max}\varphi(\breve u)\,dt \\
    s_j(t + dt) &= s_j(t)(1 - dt/\tau_s) + \frac{\text{spike}_j}{r_\mathrm{max}\tau_s}, \quad
        \Delta w_{ij} = \frac{\eta}{K}\, e_i\, s_j(t), \quad
        \mathrm{top}_j \leftarrow \sum_i w_{ij} e_i

with ``K`` cells per GLE unit (``cells_per_unit``) and ``W[k, m]`` = the sum of ``w_ij`` over
the cells ``j`` of unit ``m`` (the same for every cell ``i`` of unit ``k``).  For a stationary
rate, :math:`E[s] = \varphi(\breve u)`; with :math:`\tau_s = dt`,
:math:`E[s(t+dt)] = r(t+dt)` of docs/model.md#discrete-time.

Brian2 runtime mode only (``target='cython'`` or ``'numpy'``), not ``cpp_standalone``: a run is
split into chunks whose input tables are refilled between ``Network.run`` calls.  Batch 1
only: each synapse holds its own weight (as on the NEST engine).

References: Ellenberger et al. 2026 (GLE); Urbanczik & Senn 2014, Neuron 81:521 (Poisson
dendritic-prediction neurons); Brette 2015 (Poisson spiking as a rate code's noise).
"""
from __future__ import annotations

import contextlib
import json
import re
import runpy

import neo
import numpy as np
import quantities as pq

# absolute imports: this folder may be collected by pytest's doctests before it has an __init__.py
from cortical_gle.engines.numpy_.dynamics import DivergenceError
from cortical_gle.engines.numpy_.network import RECORDABLE, _assign, check_sequence, default_weights
from cortical_gle.io import atomic_savez, read_npz
from cortical_gle.resources import data_dir
from cortical_gle.spec import NetworkSpec
from cortical_gle.units import to_magnitude
from cortical_gle.engines.brian2_.network import spec_with_tau_m

TARGETS = ("cython", "numpy")
OPTIMIZERS = ("sgd", "adam")
#: (what, Brian2 slot, order) of one step; summed variables run at their target's order - 1
SCHEDULE = (
    ("input rates x(t); output loss term beta (y(t) - r_L(t))", "start", 0),
    ("error neurons: v, err from top and rp of the last step", "before_groups", 0),
    ("summed: basal input sum w s_pre, top-down sum w err_post", "groups", 9),
    ("synaptic plasticity w += lr/K err_post s_pre (s of the last step)", "groups", 10),
    ("pyramidal cells: du, u_pro, u, rate, rp; trace decay", "groups", 11),
    ("bias and tau_m plasticity", "after_groups", 0),
    ("Poisson spikes at r_max phi(u_pro)", "thresholds", 0),
    ("spikes enter the traces", "resets", 0),
    ("monitors", "end", 0),
)
_PYR_ORDER = 10
_EQ: dict = {}


def equations() -> dict:
    """The equation strings of ``models/brian2/spiking.py`` (read once)."""
    if not _EQ:
        path = data_dir("models") / "brian2" / "spiking.py"
        _EQ.update({k: v for k, v in runpy.run_path(str(path)).items() if k.isupper()})
    return _EQ


def check_spiking_spec(spec: NetworkSpec) -> None:
    """Refuse what the spiking microcircuit cannot be: a negative ``phi``, cross-entropy, feedback other than W^T."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    allowed = equations()["PHI"]
    for l, layer in enumerate(spec.layers):
        if layer.phi not in allowed:
            raise ValueError(
                f"layer {l} has phi {layer.phi!r}, which takes negative values: a spiking layer fires at "
                f"r_max * phi(u_pro), so phi must be non-negative ({', '.join(allowed)})")
    if spec.loss != "mse":
        raise ValueError(f"the spiking brian2 network implements loss 'mse' only, got {spec.loss!r} "
                         "(cross-entropy runs on the rate engines)")
    spec.require_exact_feedback("spiking brian2")
    spec.require_paper_error_units("spiking brian2")


@contextlib.contextmanager
def _codegen_target(target: str):
    """Brian2's code generation target while building or running this network (restored after)."""
    from brian2 import prefs

    old = prefs.codegen.target
    prefs.codegen.target = target
    try:
        yield
    finally:
        prefs.codegen.target = old


def _phi_code(name: str) -> tuple:
    fn, prime = equations()["PHI"][name]
    sub = lambda s: re.sub(r"\b([xr])\b", lambda m: "u_pro" if m.group(1) == "x" else "rate", s)  # noqa: E731
    return sub(fn), sub(prime)


def _optimizer_code(kind: str, p: str, g: str) -> str:
    return equations()["OPTIMIZER"][kind].format(p=p, g=g)


class SpikingBrian2Network:
    """A spiking GLE network in Brian2 with the engine contract (``cortical_gle/engines/base.py``).

    Parameters
    ----------
    spec : NetworkSpec
        Every layer's ``phi`` must be non-negative (softplus, sigmoid, relu); MSE loss.
    dt : float, quantity or str
        Time step (a plain number is in ``spec.time_unit``); not above any time constant.
    dtype : float64 only
    seed : int, optional
        Seeds the default weights (the numpy engine's draw) and the spike generators.
    weights, biases : list of arrays, optional
        ``W_l`` of shape ``(n_l, n_{l-1})`` (unit to unit) and ``b_l``.
    r_max : quantity or float (Hz), optional
        Rate of one cell at ``phi = 1``; default ``spec.r_max`` where the spec has it, else 200 Hz.
    tau_s : quantity or float (``spec.time_unit``), optional
        Synaptic trace time constant; default the smallest ``tau_r`` of the network.
    cells_per_unit : int
        ``K`` Poisson cells per GLE unit, sharing its input (the unit's rate is ``K r_max phi``).
    target : {'cython', 'numpy'}
        Brian2's runtime code generation.
    record_spikes : bool
        Keep a ``SpikeMonitor`` on every layer (:meth:`spike_trains`).
    chunk_steps : int
        Steps per ``Network.run`` call (the input tables' fixed length: one compilation for every run).
    """

    #: files hold the parameters and settings, not the dynamic state (a loaded network starts at rest)
    saves_state = False

    def __init__(self, spec: NetworkSpec, dt, dtype=np.float64, seed=None, weights=None, biases=None, *,
                 r_max=None, tau_s=None, cells_per_unit: int = 1, target: str = "cython",
                 record_spikes: bool = True, chunk_steps: int = 5000):
        check_spiking_spec(spec)
        if np.dtype(dtype) != np.float64:
            raise ValueError(f"the spiking brian2 network computes in float64, got dtype {np.dtype(dtype)}")
        if target not in TARGETS:
            raise ValueError(f"Brian2 target {target!r} is not offered for the spiking circuit; available "
                             f"(runtime mode): {', '.join(TARGETS)}")
        if isinstance(cells_per_unit, bool) or not isinstance(cells_per_unit, (int, np.integer)) or cells_per_unit < 1:
            raise ValueError(f"cells_per_unit must be a positive integer, got {cells_per_unit!r}")
        if not isinstance(chunk_steps, (int, np.integer)) or chunk_steps < 1:
            raise ValueError(f"chunk_steps must be a positive integer, got {chunk_steps!r}")
        dt = float(to_magnitude(dt, spec.time_unit, "dt"))
        spec.check_dt(dt)
        r_max = float(to_magnitude(getattr(spec, "r_max", 200.0) if r_max is None else r_max, pq.Hz, "r_max"))
        if not (np.isfinite(r_max) and r_max > 0):
            raise ValueError(f"r_max (rate at phi = 1, Hz) must be positive and finite, got {r_max}")
        min_tau_r = min(float(np.min(layer.tau_r)) for layer in spec.layers)
        tau_s = min_tau_r if tau_s is None else float(to_magnitude(tau_s, spec.time_unit, "tau_s"))
        if not (np.isfinite(tau_s) and tau_s >= dt * (1 - 1e-12)):
            raise ValueError(f"tau_s = {tau_s:g} must be finite and >= dt = {dt:g} "
                             f"({spec.time_unit.dimensionality.string}): the trace is integrated by forward Euler")
        self._spec, self.dt, self.dtype, self.target = spec, dt, np.dtype(np.float64), target
        self.r_max, self.tau_s, self.K, self.chunk_steps = r_max, tau_s, int(cells_per_unit), int(chunk_steps)
        self.record_spikes = bool(record_spikes)
        self._unit_s = float(pq.Quantity(1.0, spec.time_unit).rescale(pq.s).magnitude)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.steps_done = 0
        self.extra = {}
        self.optimizer = None
        self.tau_min = None
        if weights is None:
            weights, b0 = default_weights(spec, np.random.default_rng(seed))
            biases = b0 if biases is None else biases
        with _codegen_target(target):     # building may generate code too (synapse creation)
            self._build()
        self.set_weights(weights, biases)
        self.reset(1)

    # -- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        from brian2 import Clock, Network, NeuronGroup, SpikeMonitor, Synapses, TimedArray, Hz, linked_var, second

        eq, spec, K = equations(), self._spec, self.K
        sec = self._unit_s * second
        self._clock = Clock(dt=self.dt * sec, name="spk_clock")
        self._x_table = TimedArray(np.zeros((self.chunk_steps, spec.n_in)), dt=self.dt * sec, name="spk_x_table")
        self._y_table = TimedArray(np.zeros((self.chunk_steps, spec.n_out)), dt=self.dt * sec, name="spk_y_table")
        ns = {"x_table": self._x_table, "y_table": self._y_table}
        self._inputs = NeuronGroup(spec.n_in, eq["INPUT"], clock=self._clock, name="spk_input", namespace=ns)
        objs = [self._inputs, self._inputs.run_regularly(eq["INPUT_UPDATE"], when="start", order=0,
                                                         name="spk_input_update")]
        learn_state = lambda p, unit: eq["LEARNING_STATE"].format(p=p, unit=unit)  # noqa: E731
        self._pyr, self._err, self._syn, self._spikes, self._syn_units = [], [], [], [], []
        L = len(spec.layers)
        for l, layer in enumerate(spec.layers):
            n, out = layer.size, l == L - 1
            model = eq["PYRAMIDAL"] + learn_state("b", "1") + learn_state("tau_m", "second") + eq["TAU_STATE"]
            P = NeuronGroup(n * K, model + (eq["OUTPUT"] if out else ""), threshold=eq["THRESHOLD"],
                            reset=eq["RESET"], clock=self._clock, order=_PYR_ORDER, name=f"spk_pyramidal_{l}",
                            namespace=ns)
            P.state_updater.active = False        # no differential equations: every update is explicit code
            P.unit = np.repeat(np.arange(n), K)
            P.tau_m = np.repeat(layer.tau_m, K) * sec
            P.tau_r = np.repeat(layer.tau_r, K) * sec
            P.gamma, P.r_max, P.tau_s, P.time_unit = float(spec.gamma), self.r_max * Hz, self.tau_s * sec, sec
            E = NeuronGroup(n * K, eq["ERROR"], clock=self._clock, order=0, name=f"spk_error_{l}")
            E.state_updater.active = False
            for var in ("top", "rp", "tau_m", "tau_r"):
                setattr(E, var, linked_var(P, var))
            P.err = linked_var(E, "err")
            objs += [P, E, E.run_regularly(eq["ERROR_UPDATE"][bool(spec.prospective_errors)], when="before_groups",
                                           order=0, name=f"spk_error_update_{l}")]
            if out:
                P.beta = float(spec.beta)
                objs.append(P.run_regularly(eq["OUTPUT_TOP"], when="start", order=1, name="spk_output_top"))
            phi, phi_prime = _phi_code(layer.phi)
            objs.append(P.run_regularly(eq["PYRAMIDAL_UPDATE"].format(phi=phi, phi_prime=phi_prime), when="groups",
                                        order=_PYR_ORDER + 1, name=f"spk_pyramidal_update_{l}"))
            # synapses from every cell of the layer below (K cells per unit; inputs: one unit each)
            pre = self._inputs if l == 0 else self._pyr[l - 1]
            k_pre = 1 if l == 0 else K
            S = Synapses(pre, P, eq["FORWARD"] + (eq["FEEDBACK"] if l > 0 else "") + learn_state("w", "1"),
                         clock=self._clock, name=f"spk_forward_{l}")
            i_pre, j_post = np.meshgrid(np.arange(len(pre)), np.arange(n * K), indexing="ij")
            S.connect(i=i_pre.ravel(), j=j_post.ravel())
            self._syn_units.append((j_post.ravel() // K, i_pre.ravel() // k_pre))   # (post unit, pre unit)
            objs.append(S)
            if self.record_spikes:
                self._spikes.append(SpikeMonitor(P, name=f"spk_spikes_{l}"))
                objs.append(self._spikes[-1])
            self._pyr.append(P)
            self._err.append(E)
            self._syn.append(S)
        self._plasticity = []
        self._net = Network(*objs, name="spk_network")

    # -- parameters -------------------------------------------------------------------------------
    @property
    def spec(self) -> NetworkSpec:
        """The description with the current (learned) ``tau_m``."""
        return spec_with_tau_m(self._spec, self.tau_m)

    @property
    def n_layers(self) -> int:
        return len(self._spec.layers)

    def _per_unit(self, P, var) -> np.ndarray:
        return getattr(P, var + "_")[:].reshape(-1, self.K).mean(axis=1)

    @property
    def weights(self) -> list:
        """Copies of ``W_l[k, m]``: the sum of the synaptic weights from unit ``m``'s cells onto a cell of unit
        ``k`` (averaged over the cells of ``k``, which all hold the same)."""
        out = []
        for S, (post, pre), n, m in zip(self._syn, self._syn_units, self._spec.sizes[1:], self._spec.sizes[:-1]):
            W = np.zeros((n, m))
            np.add.at(W, (post, pre), S.w_[:])
            out.append(W / self.K)
        return out

    @property
    def biases(self) -> list:
        return [self._per_unit(P, "b") for P in self._pyr]

    @property
    def tau_m(self) -> list:
        """Per unit, in ``spec.time_unit``."""
        return [self._per_unit(P, "tau_m") / self._unit_s for P in self._pyr]

    def set_weights(self, weights, biases=None) -> None:
        """Set ``W_l`` (unit to unit; each synapse gets ``W[k, m] / K_pre``) and ``b_l``; shapes and finiteness
        are checked."""
        W = [np.zeros((n, m)) for m, n in zip(self._spec.sizes[:-1], self._spec.sizes[1:])]
        _assign("weights", weights, W)
        b = None
        if biases is not None:
            b = [np.zeros(n) for n in self._spec.sizes[1:]]
            _assign("biases", biases, b)
        for l, (S, (post, pre)) in enumerate(zip(self._syn, self._syn_units)):
            S.w_[:] = W[l][post, pre] / (1 if l == 0 else self.K)
            if b is not None:
                self._pyr[l].b_[:] = np.repeat(b[l] * float(self._spec.layers[l].bias), self.K)

    # -- learning ---------------------------------------------------------------------------------
    def configure_learning(self, optimizer: str = "adam", lr: float = 1e-3, learn_tau: bool = False,
                           tau_optimizer: str = "sgd", lr_tau: float = 1e-3, tau_min: float | None = None,
                           learn_tau_r: bool = False, **opt_kwargs) -> None:
        r"""Local plasticity every step: :math:`\Delta w_{ij} = \eta/K\, e_i s_j`, :math:`\Delta b = \eta e`,
        optionally :math:`\Delta\tau_m = -\eta_\tau e \dot u` (held at ``tau_min``, counted).

        ``optimizer``: ``'sgd'`` or ``'adam'`` (per synapse and per cell, betas 0.9/0.999, eps 1e-8).
        """
        if learn_tau_r:
            raise ValueError("learn_tau_r is not available on the spiking brian2 network")
        if opt_kwargs:
            raise ValueError(f"the spiking brian2 network does not take {sorted(opt_kwargs)} "
                             "(learned tau_r and Adam settings other than the defaults are not implemented)")
        for name, value in (("optimizer", optimizer), ("tau_optimizer", tau_optimizer)):
            if value not in OPTIMIZERS:
                raise ValueError(f"unknown {name} {value!r}; known: {', '.join(OPTIMIZERS)}")
        for name, value in (("lr", lr), ("lr_tau", lr_tau)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if tau_min is not None and tau_min < self.dt:
            raise ValueError(f"tau_min = {tau_min} must be >= dt = {self.dt}")
        from brian2 import second

        eq, sec = equations(), self._unit_s
        self._net.remove(*self._plasticity)
        self._plasticity = []
        for l, (P, S) in enumerate(zip(self._pyr, self._syn)):
            S.lr_w = lr / (1 if l == 0 else self.K)
            P.lr_b = lr * float(self._spec.layers[l].bias)
            P.lr_tau_m = lr_tau * sec * float(learn_tau) * second
            P.tau_min = (tau_min if tau_min is not None else self.dt) * sec * second
            for G in (S, P):
                for var in ("m", "v", "n"):
                    for p in (("w",) if G is S else ("b", "tau_m")):
                        getattr(G, f"{var}_{p}_")[:] = 0.0
            self._plasticity.append(S.run_regularly(_optimizer_code(optimizer, "w", eq["G_W"]), when="groups",
                                                    order=_PYR_ORDER, name=f"spk_plasticity_w_{l}"))
            code = _optimizer_code(optimizer, "b", eq["G_B"])
            if learn_tau:
                code += "\n" + _optimizer_code(tau_optimizer, "tau_m", eq["G_TAU"]) + eq["TAU_CLAMP"]
            self._plasticity.append(P.run_regularly(code, when="after_groups", order=0,
                                                    name=f"spk_plasticity_params_{l}"))
        self._net.add(*self._plasticity)
        self.optimizer = {"optimizer": optimizer, "lr": lr, "learn_tau": learn_tau, "tau_optimizer": tau_optimizer,
                          "lr_tau": lr_tau, "tau_min": tau_min}
        self.tau_min = tau_min

    @property
    def tau_clamp_events(self) -> int:
        """Cell-steps on which a learned ``tau_m`` was held at ``tau_min``."""
        return int(sum(P.n_clamp_[:].sum() for P in self._pyr))

    # -- simulation -------------------------------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """All dynamic state (potentials, rates, traces, errors) to zero; parameters are kept."""
        if batch_size != 1:
            raise ValueError(f"the spiking brian2 network simulates batch 1 (every synapse holds its own weight); "
                             f"got batch_size {batch_size!r}")
        for P, E in zip(self._pyr, self._err):
            for var in ("u", "du", "u_pro", "I_basal", "top", "rate", "rp", "s", "n_sat"):
                getattr(P, var + "_")[:] = 0
            for var in ("v", "err"):
                getattr(E, var + "_")[:] = 0.0
        self._inputs.s_[:] = 0.0
        self._t_reset = float(self._net.t_)
        self._spike_start = [m.num_spikes for m in self._spikes]

    def silence_errors(self) -> None:
        """Zero the error neurons and their top-down input."""
        for P, E in zip(self._pyr, self._err):
            P.top_[:] = 0.0
            E.v_[:] = 0.0
            E.err_[:] = 0.0

    def state_snapshot(self):
        raise NotImplementedError("the spiking brian2 network cannot snapshot its state: the spikes that follow "
                                  "depend on Brian2's global random stream, which a snapshot cannot restore")

    def restore_state(self, snapshot) -> None:
        raise NotImplementedError("the spiking brian2 network has no state snapshots (see state_snapshot)")

    @property
    def output(self) -> np.ndarray:
        """``r_L = phi(u_pro)`` of the output units (the rate their spike trains encode), shape ``(1, n_out)``."""
        return self._per_unit(self._pyr[-1], "rate")[None, :]

    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True) -> dict:
        """Advance through ``x`` (T, 1, n_in); returns the recorded arrays (``cortical_gle/engines/base.py``).

        Spikes go to :meth:`spike_trains`.  Raises ``ValueError`` if a cell would have needed more than
        one spike in a step (``r_max phi dt > 1``), naming the layer.
        """
        from brian2 import StateMonitor, seed as brian_seed

        x, target = check_sequence(self._spec, x, target, record, self.dtype, recordable=RECORDABLE)
        if x.shape[1] != 1:
            raise ValueError(f"the spiking brian2 network simulates batch 1; x has batch {x.shape[1]}")
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        if reset:
            self.reset(1)
        T, L, K = x.shape[0], self.n_layers, self.K
        for obj in self._plasticity:
            obj.active = bool(learn)
        src = {"r": "rate", "u": "u", "u_pro": "u_pro", "v": "v", "e": "err", "r_out": "rate"}
        wanted = set(record) | ({"r_out"} if "loss" in record else set())
        monitors = {}    # fixed names: a later run reuses the compiled code
        for name in sorted(wanted & set(src)):
            groups = self._err if name in ("v", "e") else self._pyr[-1:] if name == "r_out" else self._pyr
            monitors[name] = [StateMonitor(G, src[name], record=np.arange(0, len(G), K), when="end",
                                           name=f"spk_monitor_{name}_{l}") for l, G in enumerate(groups)]
        all_mons = [m for ms in monitors.values() for m in ms]
        out_before = self.output[0].copy()
        P_out = self._pyr[-1]
        self._net.add(*all_mons)
        try:
            with _codegen_target(self.target), np.errstate(over="ignore", invalid="ignore"):
                done = 0
                while done < T:
                    n = min(self.chunk_steps, T - done)
                    self._x_table.values[:n] = x[done:done + n, 0, :]
                    P_out.has_target = 0.0 if target is None else 1.0
                    if target is not None:
                        self._y_table.values[:n] = target[done:done + n, 0, :]
                    self._inputs.t_chunk_ = self._net.t_
                    P_out.t_chunk_ = self._net.t_
                    brian_seed(int(self._rng.integers(2**31 - 1)))
                    self._net.run(n * self._clock.dt, report=None)
                    done += n
        finally:
            self._net.remove(*all_mons)
        self.steps_done += T
        self._check_after_run()
        res = {}
        for name, mons in monitors.items():
            data = [getattr(m, src[name] + "_")[:, :T].T for m in mons]   # (T, n_l) each
            if name == "r_out":
                res[name] = data[0][:, None, :]
            else:
                arr = np.zeros((T, L, 1, max(self._spec.sizes[1:])))
                for l, d in enumerate(data):
                    arr[:, l, 0, : d.shape[1]] = d
                res[name] = arr
        if "loss" in record:
            res["loss"] = np.full(T, np.nan)
            if target is not None:
                before = np.concatenate([out_before[None, :], res["r_out"][:-1, 0, :]])
                res["loss"] = 0.5 * np.sum((before - target[:, 0, :]) ** 2, axis=-1)
        return {k: v for k, v in res.items() if k in record}

    def _check_after_run(self) -> None:
        for l, P in enumerate(self._pyr):
            if not np.all(np.isfinite(P.u_pro_[:])):
                raise DivergenceError(l, self.steps_done)
            n_sat = int(P.n_sat_[:].sum())
            if n_sat:
                raise ValueError(
                    f"layer {l}: r_max * phi(u_pro) * dt exceeded 1 on {n_sat} cell-steps (max phi "
                    f"{P.rate_[:].max():.3g}, r_max {self.r_max:g} Hz, dt {self.dt:g}): a cell fires at most once "
                    "per step, so those rates were not represented; lower r_max or dt, or use more cells per unit")

    # -- spikes -----------------------------------------------------------------------------------
    def spike_trains(self) -> list:
        """The spikes since the last reset: per layer, one ``neo.SpikeTrain`` per cell (times in ``spec.time_unit``).

        Cell ``c`` of unit ``k`` is train ``k * K + c``; each carries annotations ``layer``, ``unit``, ``cell``.
        """
        if not self.record_spikes:
            raise RuntimeError("this network was built with record_spikes=False")
        unit = pq.Quantity(1.0, self._spec.time_unit).units
        to_unit = lambda s: pq.Quantity(s, pq.s).rescale(unit)  # noqa: E731
        t0, t1 = to_unit(self._t_reset), to_unit(float(self._net.t_))
        out = []
        for l, (mon, start) in enumerate(zip(self._spikes, self._spike_start)):
            i, t = mon.i_[:][start:], mon.t_[:][start:]
            trains = []
            for cell in range(len(self._pyr[l])):
                times = to_unit(np.sort(t[i == cell]))
                trains.append(neo.SpikeTrain(times, t_start=t0, t_stop=t1, name=f"layer{l}_unit{cell // self.K}"
                                             f"_cell{cell % self.K}", layer=l, unit=cell // self.K,
                                             cell=cell % self.K))
            out.append(trains)
        return out

    # -- files ------------------------------------------------------------------------------------
    def _options(self) -> dict:
        return {"r_max": self.r_max, "tau_s": self.tau_s, "cells_per_unit": self.K, "target": self.target,
                "record_spikes": self.record_spikes, "chunk_steps": self.chunk_steps}

    def save(self, path, extra: dict | None = None) -> None:
        """Spec, parameters, options and learning settings to one ``.npz``, atomically (no dynamic state)."""
        arrays = {f"W{l}": w for l, w in enumerate(self.weights)}
        arrays.update({f"b{l}": b for l, b in enumerate(self.biases)})
        arrays.update({f"tau_m{l}": t for l, t in enumerate(self.tau_m)})
        arrays["meta"] = np.asarray(json.dumps({"spec": self.spec.to_dict(), "dt": self.dt, "options": self._options(),
                                                "steps_done": self.steps_done, "learning": self.optimizer,
                                                "engine": "brian2-spiking"}))
        arrays["extra"] = np.asarray(json.dumps(extra or {}))
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path, **options) -> "SpikingBrian2Network":
        """A network saved with :meth:`save` (parameters, settings; it starts at rest)."""
        data, meta = read_npz(path, "spiking brian2 network file")
        if meta.get("engine") != "brian2-spiking":
            raise ValueError(f"{path}: not a spiking brian2 network file (engine {meta.get('engine')!r})")
        spec = NetworkSpec.from_dict(meta["spec"])
        L = len(spec.layers)
        net = cls(spec, meta["dt"], weights=[data[f"W{l}"] for l in range(L)],
                  biases=[data[f"b{l}"] for l in range(L)], **{**meta["options"], **options})
        if meta.get("learning"):
            net.configure_learning(**meta["learning"])
        net.steps_done = int(meta["steps_done"])
        net.extra = json.loads(str(data["extra"]))
        return net


def build_spiking(spec: NetworkSpec, dt, **options) -> SpikingBrian2Network:
    """The spiking network for ``spec`` (what the ``brian2`` engine builds when ``spec.spiking`` is true).

    ``options`` are :class:`SpikingBrian2Network`'s keyword arguments (``seed``, ``weights``,
    ``r_max``, ``tau_s``, ``cells_per_unit``, ``target``, ...); an unknown one is an error naming it.
    """
    return SpikingBrian2Network(spec, dt, **options)


__all__ = ["SpikingBrian2Network", "build_spiking", "check_spiking_spec", "equations", "SCHEDULE"]
