r"""Spiking GLE on NEST (``spec.spiking``): NESTML neurons and third-factor synapses.

The equations live in ``models/nest/gle_neuron.nestml`` and ``gle_synapse.nestml``
(docs/nest.md#spiking-variant); this module only creates, connects, simulates and
reads back (Create/Connect/Simulate).

Network (docs/model.md#microcircuit-mapping, spiking form):

* input unit ``j``: an ``inhomogeneous_poisson_generator`` at ``r_max x_j(t)`` into a
  ``parrot_neuron`` (so that its spikes can pass plastic synapses); ``x`` lies in [0, 1];
* GLE neuron ``i`` of layer ``l``: three ``gle_neuron`` nodes with identical inputs,
  parameters and deterministic state, the pyramidal cell (spikes at
  :math:`\psi\,\phi(\breve u)`) and two error interneurons (spikes at
  :math:`\psi\,\max(\pm g e, 0)`: signed errors as a +/- pair, gain ``e_gain`` = g;
  the first layer has no error interneurons, as no layer below receives its errors);
* bottom-up: ``gle_synapse`` from the layer below's pyramidal cells (or the input
  parrots) onto all three nodes, :math:`\Delta W = \eta\, e_{post}` per presynaptic spike with
  :math:`\eta = \mathrm{lr} / (\psi\, dt)`, i.e. on average
  :math:`\dot W = (\mathrm{lr}/dt)\, e_{post}\, r_{pre}`, the rate engine's per-step SGD;
* top-down: static synapses from the layer above's error interneurons, weights
  :math:`+B` (from "+") and :math:`-B` (from "-"), :math:`B = W^T`, which the engine
  copies from the learned ``W`` every ``sync_every`` (weight transport, as the rate
  engines assume);
* output targets: one ``step_current_generator`` per output neuron.

A downstream neuron sees the spikes through an exponential trace (``tau_s``), a
first-order low-pass :math:`1/(1 + i\omega\tau_s)`.  With ``compensate_trace`` the
neuron's prospective time constant is raised to :math:`\tau_r + \tau_s`, which cancels
that lag to first order in :math:`\omega\tau_s`:
:math:`(1 + i\omega(\tau_r + \tau_s))/(1 + i\omega\tau_s) = 1 + i\omega\tau_r + O((\omega\tau_s)^2)`.
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq

from ...spec import NetworkSpec
from ...units import to_magnitude
from ..numpy_.losses import loss_and_dloss
from ..numpy_.network import check_sequence
from .build import build_nest
from .network import NestNetworkBase, _nest, _set_conn_weights, reset_kernel

NEURON = "gle_neuron__with_gle_synapse"
SYNAPSE = "gle_synapse__with_gle_neuron"
#: NESTML numbers a neuron's continuous input ports (CurrentEvent receptors) in declaration order
RECEPTOR_I_EXT, RECEPTOR_TARGET = 0, 1
#: ``error_sign`` of the three nodes of one GLE neuron: pyramidal cell, "+" and "-" error interneuron
ROLES = (0.0, 1.0, -1.0)
#: what a spiking run can return
SPIKING_RECORDABLE = ("r_out", "loss", "r", "e", "spikes", "error_spikes")


def check_spiking_spec(spec: NetworkSpec) -> None:
    """Refuse, by name, what the spiking variant cannot express."""
    if not spec.spiking:
        raise ValueError("SpikingNestNetwork needs spec.spiking = True (the rate-exact engine is NestGLENetwork)")
    for l, layer in enumerate(spec.layers):
        if layer.phi != "sigmoid":
            raise ValueError(f"the spiking variant emits spikes at r_max * phi(u_pro), so phi must lie in [0, 1]: "
                             f"layer {l} has phi {layer.phi!r}; use phi 'sigmoid' (output_phi too)")
    if spec.loss != "mse":
        raise ValueError(f"the spiking variant supports loss 'mse' only, got {spec.loss!r}")
    spec.require_exact_feedback("spiking NEST")
    spec.require_paper_error_units("spiking NEST")


def install_spiking_models(nest) -> None:
    """Install the compiled NESTML module (built once into the cache by ``cortical-gle build-nest``)."""
    paths = build_nest(nestml=True)
    if NEURON not in nest.node_models:
        nest.Install(str(paths["nestml"]))


class SpikingNestNetwork(NestNetworkBase):
    """A layered spiking GLE network in NEST (see the module docstring).

    Parameters
    ----------
    spec : NetworkSpec
        With ``spiking = True`` and ``phi = 'sigmoid'`` in every layer.
    dt : float
        NEST's resolution, in ``spec.time_unit``; ``r_max dt <= 1`` (one spike per step at most).
    seed : int, optional
        Seeds the default weights (the numpy engine's draw) and NEST's random numbers.
    weights, biases : list of arrays, optional
    threads : int
    neuron_params : dict, optional
        Extra ``gle_neuron`` parameters for every neuron (NEST refuses unknown names).
    tau_s, tau_e : quantity or float (ms)
        Time constants of the bottom-up and the top-down spike traces.
    e_gain : float
        Error interneurons fire at ``r_max * e_gain * |e|`` (one of the pair for each sign).
    sync_every : quantity or float (ms)
        How often the feedback weights ``B`` are set to the learned ``W^T``.
    compensate_trace : bool
        Raise each neuron's ``tau_r`` by ``tau_s`` (first-order compensation of the trace).
    """

    saves_state = False

    def __init__(self, spec: NetworkSpec, dt: float, seed=None, weights=None, biases=None, threads: int = 1,
                 neuron_params: dict | None = None, tau_s=2.0, tau_e=10.0, e_gain: float = 10.0,
                 sync_every=100.0, compensate_trace: bool = True, dtype=np.float64):
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        check_spiking_spec(spec)
        self._setup(spec, dt, dtype, seed, weights, biases, threads, neuron_params)
        self.psi = spec.r_max * 1e-3  # 1/ms
        if self.psi * self.dt_ms > 1:
            raise ValueError(f"r_max * dt = {self.psi * self.dt_ms:g} > 1: the spike probability per step must "
                             f"not exceed 1 (lower r_max = {spec.r_max:g} Hz or dt)")
        self.tau_s = float(to_magnitude(tau_s, pq.ms, "tau_s"))
        self.tau_e = float(to_magnitude(tau_e, pq.ms, "tau_e"))
        self.sync_ms = float(to_magnitude(sync_every, pq.ms, "sync_every"))
        for name, value in (("tau_s", self.tau_s), ("tau_e", self.tau_e), ("sync_every", self.sync_ms)):
            if not (np.isfinite(value) and value >= self.dt_ms):
                raise ValueError(f"{name} must be >= dt = {self.dt_ms:g} ms, got {value:g} ms")
        for l, layer in enumerate(spec.layers):
            if np.any(np.isclose(layer.tau_m * self._ms, self.tau_s, rtol=1e-9)):
                raise ValueError(f"layer {l}: tau_m equal to tau_s = {self.tau_s:g} ms makes the trace propagator "
                                 "singular (NESTML's exact solver); choose a different tau_s")
        if not (np.isfinite(e_gain) and e_gain > 0):
            raise ValueError(f"e_gain must be positive, got {e_gain}")
        self.e_gain = float(e_gain)
        self.compensate_trace = bool(compensate_trace)
        self.seed = seed
        self.optimizer = None
        self._built = False
        self.steps_done = 0
        self.batch_size = 1

    # -- parameters -----------------------------------------------------------
    def configure_learning(self, optimizer: str = "sgd", lr: float = 1e-3, learn_tau: bool = False,
                           learn_tau_r: bool = False, **kwargs) -> None:
        """Online learning in the synapses, on average ``dW = lr e r_pre`` per step (and ``db = lr e``)."""
        if learn_tau_r:
            raise ValueError("learn_tau_r is not available on the spiking NEST engine")
        if optimizer != "sgd":
            raise ValueError(f"optimizer {optimizer!r} is not available on the spiking NEST engine: its synapses "
                             "change by eta * e_post per presynaptic spike (plain SGD)")
        if learn_tau:
            raise ValueError("learn_tau is not available on the spiking NEST engine (tau_m learning needs du/dt "
                             "at the synapse); use the rate engines")
        if kwargs:
            raise ValueError(f"unknown learning options for the spiking NEST engine: {sorted(kwargs)}")
        if not (lr > 0 and np.isfinite(lr)):
            raise ValueError(f"learning rate lr must be positive, got {lr}")
        self.optimizer = {"name": "sgd", "lr": float(lr)}

    # -- building -------------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """Rebuild the NEST network from zero state (weights and biases kept)."""
        if batch_size != 1:
            raise ValueError(f"the spiking NEST engine runs batch size 1, got {batch_size}")
        self._sync_from_nest()
        self._build()

    def _build(self) -> None:
        nest = reset_kernel(self)
        install_spiking_models(nest)
        nest.set(resolution=self.dt_ms, local_num_threads=self.threads,
                 rng_seed=int(np.random.SeedSequence(self.seed).generate_state(1)[0] % (2**31 - 1)) + 1)
        spec, L = self.spec, self.n_layers
        self._gen = nest.Create("inhomogeneous_poisson_generator", spec.n_in)
        self._parrots = nest.Create("parrot_neuron", spec.n_in)
        nest.Connect(self._gen, self._parrots, "one_to_one", {"delay": self.dt_ms})
        self._copies = []  # per layer: [pyramidal, error +, error -] node collections
        for l, layer in enumerate(spec.layers):
            tau_r = layer.tau_r * self._ms + (self.tau_s if self.compensate_trace else 0.0)
            params = [{"tau_m": float(tm) * self._ms, "tau_r": float(tr), "tau_s": self.tau_s, "tau_e": self.tau_e,
                       "psi": self.psi, "gamma": float(spec.gamma), "beta": float(spec.beta),
                       "e_gain": self.e_gain, "prospective": bool(spec.prospective_errors),
                       "is_output": l == L - 1} for tm, tr in zip(layer.tau_m, tau_r)]
            copies = []
            # the first layer's error interneurons would have no targets (inputs carry no error)
            for sign in (ROLES if l > 0 else ROLES[:1]):
                copies.append(self._create_neurons(NEURON, [dict(p, error_sign=sign) for p in params]))
            self._copies.append(copies)
        rec = self._copies[0][0][0].get("receptor_types")
        self._rbasal, self._rtop = rec["BASAL_SPIKES"], rec["TOP_SPIKES"]
        pre = self._parrots
        for l in range(L):
            for post in self._copies[l]:
                nest.Connect(pre, post, "all_to_all", {"synapse_model": SYNAPSE, "weight": self._W[l],
                                                       "receptor_type": self._rbasal, "delay": self._dt_delay()})
                if l + 1 < L:
                    for src, sign in zip(self._copies[l + 1][1:], ROLES[1:]):
                        nest.Connect(src, post, "all_to_all",
                                     {"weight": sign * self._W[l + 1].T, "receptor_type": self._rtop,
                                      "delay": self._dt_delay()})
            pre = self._copies[l][0]
        self._targets = nest.Create("step_current_generator", spec.n_out)
        for post in self._copies[-1]:
            nest.Connect(self._targets, post, "one_to_one", {"delay": self._dt_delay(),
                                                              "receptor_type": RECEPTOR_TARGET})
        self._mm = [nest.Create("multimeter", params={"record_from": ["r", "e_syn"], "interval": self.dt_ms})
                    for _ in range(L)]
        for l in range(L):
            nest.Connect(self._mm[l], self._copies[l][0])
        self._recorders = [[nest.Create("spike_recorder") for _ in ROLES] for _ in range(L)]
        for l in range(L):
            for nodes, rec in zip(self._copies[l], self._recorders[l]):
                nest.Connect(nodes, rec)
        self._fwd, self._fb = [], []
        pre = self._parrots
        for l in range(L):
            self._fwd.append([nest.GetConnections(pre, post, synapse_model=SYNAPSE) for post in self._copies[l]])
            self._fb.append([(nest.GetConnections(src, post), sign) for post in self._copies[l]
                             for src, sign in zip(self._copies[l + 1][1:], ROLES[1:])] if l + 1 < L else [])
            pre = self._copies[l][0]
        self._built = True
        self._push_parameters()
        self.steps_done = 0

    def _dt_delay(self) -> float:
        return self.dt_ms

    def _push_parameters(self) -> None:
        for l in range(self.n_layers):
            for nodes in self._copies[l]:
                nodes.set(b=self._b[l].tolist())
            for conns in self._fwd[l]:
                _set_conn_weights(conns, self._W[l])
        self._sync_feedback()

    def _sync_feedback(self) -> None:
        """``+B`` / ``-B`` with ``B = W_{l+1}^T`` on the top-down connections from the "+" / "-" interneurons."""
        for l in range(self.n_layers - 1):
            for conns, sign in self._fb[l]:
                _set_conn_weights(conns, sign * self._W[l + 1].T)

    def _sync_from_nest(self) -> None:
        """Read the learned W (from the pyramidal cells' synapses) and b back."""
        if not self._live():
            return
        for l in range(self.n_layers):
            self._W[l][...] = _get_matrix(self._fwd[l][0], self._W[l].shape)
            self._b[l][:] = np.atleast_1d(self._copies[l][0].get("b"))

    # -- simulation -----------------------------------------------------------
    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True,
            progress: bool = False):
        """Run ``x`` (steps, 1, n_in), values in [0, 1] (input rates in units of ``r_max``).

        Returns a dict: ``r_out`` (steps, 1, n_out) the output cells' rate
        :math:`\\phi(\\breve u)` after each step; ``loss`` (steps,) the MSE of ``r_out``
        against ``target``; ``r`` and ``e`` (steps, layers, 1, max size) every pyramidal
        cell's rate and error (zero-padded, as the rate engines record them); ``spikes`` a
        list per layer of ``neo.SpikeTrain`` (one per neuron) of the pyramidal cells;
        ``error_spikes`` a list per layer of
        ``(plus, minus)``, the trains of the "+" and "-" error interneurons (empty for
        the first layer, which has none: its errors would have no receiver).
        """
        nest = _nest()
        x, target = check_sequence(self.spec, x, target, record, np.float64, SPIKING_RECORDABLE)
        n_steps, B = x.shape[:2]
        if B != 1:
            raise ValueError(f"the spiking NEST engine runs batch size 1, got batch {B}")
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"the spiking variant's input units fire at r_max * x, so x must lie in [0, 1]; "
                             f"got values in [{x.min():g}, {x.max():g}]")
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        if reset or not self._live():
            self.reset(1)
        t0 = nest.biological_time
        times = (t0 + self.dt_ms * np.arange(1, n_steps + 1)).round(6)
        for j, gen in enumerate(self._gen):
            gen.set(rate_times=times.tolist(), rate_values=(x[:, 0, j] * self.spec.r_max).tolist())
        y = np.zeros((n_steps, self.spec.n_out)) if target is None else np.asarray(target, float)[:, 0, :]
        for i, gen in enumerate(self._targets):
            gen.set(amplitude_times=times.tolist(), amplitude_values=y[:, i].tolist())
        lr = self.optimizer["lr"] if learn else 0.0
        for l in range(self.n_layers):
            for conns in self._fwd[l]:
                conns.set(eta=lr / (self.psi * self.dt_ms))
            for nodes in self._copies[l]:
                nodes.set(eta_b=lr / self.dt_ms if self.spec.layers[l].bias else 0.0)
        for rec in [r for recs in self._recorders for r in recs] + self._mm:
            rec.n_events = 0
        chunk = max(1, int(round(self.sync_ms / self.dt_ms))) if learn and self.n_layers > 1 else n_steps
        done = 0
        while done < n_steps:
            k = min(chunk, n_steps - done)
            nest.Simulate(k * self.dt_ms)
            done += k
            if learn and self.n_layers > 1:
                self._sync_from_nest()
                self._sync_feedback()
        self.steps_done += n_steps
        out = {}
        L, N = self.n_layers, max(self.spec.sizes[1:])
        rates = {"r": np.zeros((n_steps, L, 1, N)), "e": np.zeros((n_steps, L, 1, N))}
        for l in range(L) if set(record) & {"r", "e", "r_out", "loss"} else ():
            ev = self._mm[l].events
            idx = np.round((ev["times"] - t0) / self.dt_ms).astype(int) - 1
            col = {n: k for k, n in enumerate(self._copies[l][0].tolist())}
            cols = [col[s] for s in ev["senders"]]
            rates["r"][idx, l, 0, cols] = ev["r"]
            rates["e"][idx, l, 0, cols] = ev["e_syn"]
        for name in ("r", "e"):
            if name in record:
                out[name] = rates[name]
        if "r_out" in record or "loss" in record:
            r_out = rates["r"][:, -1, :, : self.spec.n_out]
            if "r_out" in record:
                out["r_out"] = r_out
            if "loss" in record:
                out["loss"] = (np.full(n_steps, np.nan) if target is None else
                               np.array([loss_and_dloss("mse", r_out[t], y[t][None])[0] for t in range(n_steps)]))
        t1 = t0 + n_steps * self.dt_ms
        if "spikes" in record:
            out["spikes"] = [_spike_trains(self._recorders[l][0], self._copies[l][0], t0, t1, f"layer{l}/pyramidal")
                             for l in range(self.n_layers)]
        if "error_spikes" in record:
            out["error_spikes"] = [tuple(_spike_trains(self._recorders[l][k], self._copies[l][k], t0, t1,
                                                       f"layer{l}/error{'+' if ROLES[k] > 0 else '-'}")
                                         if l > 0 else [] for k in (1, 2)) for l in range(self.n_layers)]
        return {k: out[k] for k in record}

    @property
    def output(self) -> np.ndarray:
        if not self._live():
            raise RuntimeError("the NEST network has no state yet (or another NEST network replaced it): run() first")
        return np.atleast_1d(self._copies[-1][0].get("r")).reshape(1, -1).astype(float)

    def save(self, path, extra=None) -> None:
        raise NotImplementedError("saving a spiking NEST network is not implemented (read weights/biases instead)")


def _spike_trains(recorder, nodes, t_start, t_stop, name) -> list:
    """One ``neo.SpikeTrain`` (ms) per node, in the order of ``nodes``."""
    ev = recorder.events
    trains = []
    for k, node in enumerate(nodes.tolist()):
        t = np.sort(ev["times"][ev["senders"] == node])
        trains.append(neo.SpikeTrain(t * pq.ms, t_start=t_start * pq.ms, t_stop=t_stop * pq.ms,
                                     name=f"{name}/{k}"))
    return trains


def _get_matrix(conns, shape) -> np.ndarray:
    c = conns.get(["source", "target", "weight"])
    src, tgt = np.atleast_1d(c["source"]), np.atleast_1d(c["target"])
    M = np.zeros(shape)
    M[np.searchsorted(np.unique(tgt), tgt), np.searchsorted(np.unique(src), src)] = np.atleast_1d(c["weight"])
    return M


def sinusoid_driven_spikes(tau_m, tau_r, frequencies, amplitudes, n_neurons: int, duration, dt=0.1,
                           r_max: float = 200.0, offset: float = 0.0, seed: int = 0, threads: int = 1):
    r"""Spike trains of ``n_neurons`` independent ``gle_neuron`` s per frequency, driven by sinusoids.

    Each population gets :math:`I(t) = I_0 + A_f \sin(2\pi f t)` from an ``ac_generator``
    through a connection of delay ``dt``; their rate is :math:`r_{max}\,\sigma(\breve u)`.
    A spike drawn in a step carries the time stamp of the step's end, so a spike at
    ``t`` was drawn with the drive :math:`I(t - 2\,dt)` (connection delay plus one step):
    that is the delay returned.  All arguments in ms / Hz.

    Returns
    -------
    dict frequency -> list of neo.SpikeTrain, and the input delay (ms)
    """
    nest = reset_kernel()
    install_spiking_models(nest)
    nest.set(resolution=float(dt), local_num_threads=int(threads), rng_seed=int(seed) + 1)
    pops, recs = {}, {}
    for f, amp in zip(frequencies, amplitudes):
        nodes = nest.Create(NEURON, int(n_neurons), params={"tau_m": float(tau_m), "tau_r": float(tau_r),
                                                            "psi": r_max * 1e-3})
        gen = nest.Create("ac_generator", params={"amplitude": float(amp), "offset": float(offset),
                                                  "frequency": float(f)})
        nest.Connect(gen, nodes, "all_to_all", {"delay": float(dt), "receptor_type": RECEPTOR_I_EXT})
        rec = nest.Create("spike_recorder")
        nest.Connect(nodes, rec)
        pops[f], recs[f] = nodes, rec
    nest.Simulate(float(duration))
    return {f: _spike_trains(recs[f], pops[f], 0.0, float(duration), f"{f:g}Hz") for f in frequencies}, 2 * float(dt)
