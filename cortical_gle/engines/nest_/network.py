"""A GLE network simulated by NEST, step for step equal to the numpy engine.

NEST holds the network: one ``gle_rate_input`` node per input unit, one
``gle_rate_neuron`` per GLE neuron (soma and error compartment), plastic
``gle_rate_synapse`` connections bottom-up and ``gle_rate_feedback_synapse``
connections top-down (``B = W^T``, kept equal by the same local update).  The
equations live in ``models/nest/gle_rate/gle_rate_module.cpp``; this class only
creates, connects, simulates and reads back (Create/Connect/Simulate).

Differences from the numpy engine, each refused with a message: float64 only,
MSE loss only (a softmax couples the output neurons), plain SGD in the synapses
(``dW = eta e r`` per step; Adam's per-weight state is not a synapse rule), and
learning with batch size 1 (a batch is run as independent copies of the network,
and each copy's synapses learn on their own).
"""
from __future__ import annotations

import json
import os

import numpy as np
import quantities as pq

from ...io import atomic_savez, read_npz
from ...spec import NetworkSpec
from ..numpy_.losses import loss_and_dloss
from ..numpy_.network import RECORDABLE, _assign, check_sequence, default_weights
from .build import build_nest

#: the error-unit potential v is not read back from NEST (yet)
NEST_RECORDABLE = tuple(r for r in RECORDABLE if r != "v")

TIC_MS = 1e-3  # NEST's default time grid (tics_per_ms = 1000)
_KERNEL = {"owner": None}  # NEST holds one network per process


def reset_kernel(new_owner=None):
    """``nest.ResetKernel()``, the one way any code here empties NEST's kernel; returns ``nest``.

    The engine network that held the kernel first copies back what it learned (its nodes
    go) and is marked as displaced, so its next call rebuilds.  ``new_owner`` is the
    engine network about to build there (``None``: benchmarks, data generators).
    """
    nest = _nest()
    owner = _KERNEL.get("owner")
    if owner is not None and owner is not new_owner:
        owner._sync_from_nest()
    _KERNEL["owner"] = None
    nest.ResetKernel()
    _KERNEL["owner"] = new_owner
    return nest


def _numba_off_openmp() -> None:
    """Give numba its ``workqueue`` threading layer in a process that starts NEST first.

    NEST's wheel carries its own libgomp; numba's ``omp`` layer loads the system's.
    Once NEST has started, launching numba's ``omp`` threads (a parallel kernel of the
    numpy engine, ``numba.set_num_threads``) makes NEST's next ``ResetKernel``
    segfault.  Left alone: a layer the user chose (``NUMBA_THREADING_LAYER``) and
    threads numba already runs (NEST loaded second works).
    """
    import numba
    from numba.np.ufunc import parallel

    if os.environ.get("NUMBA_THREADING_LAYER") or getattr(parallel, "_is_initialized", False):
        return
    numba.config.THREADING_LAYER = "workqueue"


def _nest():
    _numba_off_openmp()
    import nest  # imported late: PyNEST prints a banner and starts a kernel
    nest.verbosity = nest.VerbosityLevel.ERROR
    return nest


class NestNetworkBase:
    """What the rate-exact and the spiking NEST networks share: input checks, NEST's time grid,
    and the parameters as copies read back from NEST (``_sync_from_nest`` is each class's own)."""

    def _setup(self, spec, dt, dtype, seed, weights, biases, threads, neuron_params) -> None:
        if np.dtype(dtype) != np.float64:
            raise ValueError(f"the NEST engine computes in float64; dtype {np.dtype(dtype)} is not available")
        spec.check_dt(float(dt))
        if not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.spec, self.dt, self.threads = spec, float(dt), int(threads)
        self._ms = float(pq.Quantity(1.0, spec.time_unit).rescale(pq.ms).magnitude)
        self.dt_ms = self.dt * self._ms
        n_tics = self.dt_ms / TIC_MS
        if abs(n_tics - round(n_tics)) > 1e-9 * max(1.0, n_tics) or round(n_tics) < 1:
            raise ValueError(f"dt = {self.dt:g} {spec.time_unit.dimensionality.string} = {self.dt_ms:g} ms is not a "
                             f"multiple of NEST's time grid ({TIC_MS:g} ms)")
        self.neuron_params = dict(neuron_params or {})
        if weights is None:
            weights, b0 = default_weights(spec, np.random.default_rng(seed))
            biases = b0 if biases is None else biases
        self._W = [np.zeros((n, m)) for m, n in zip(spec.sizes[:-1], spec.sizes[1:])]
        self._b = [np.zeros(n) for n in spec.sizes[1:]]
        _assign("weights", weights, self._W)
        if biases is not None:
            _assign("biases", biases, self._b)

    @property
    def n_layers(self) -> int:
        return len(self.spec.layers)

    @property
    def weights(self) -> list:
        """Copies of ``W_l`` as they stand after the last step (NEST holds the weights)."""
        self._sync_from_nest()
        return [w.copy() for w in self._W]

    @property
    def biases(self) -> list:
        self._sync_from_nest()
        return [b.copy() for b in self._b]

    def _live(self) -> bool:
        return self._built and _KERNEL["owner"] is self

    def _create_neurons(self, model: str, params: list):
        """``Create`` one node per dict of ``params``, then apply ``neuron_params`` (refused by name by NEST)."""
        nodes = _nest().Create(model, len(params))
        nodes.set(params)
        if self.neuron_params:
            try:
                nodes.set(self.neuron_params)
            except Exception as err:  # NESTErrors are created at run time
                raise ValueError(f"NEST refused neuron_params {self.neuron_params}: {err}") from None
        return nodes

    def set_weights(self, weights, biases=None) -> None:
        """Set ``W_l`` (and ``b_l``) in every copy of the network (state is kept)."""
        self._sync_from_nest()
        _assign("weights", weights, self._W)
        if biases is not None:
            _assign("biases", biases, self._b)
        if self._live():
            self._push_parameters()


class NestGLENetwork(NestNetworkBase):
    """A layered GLE network in NEST (docs/model.md#discrete-time), the numpy engine's API.

    Parameters
    ----------
    spec : NetworkSpec
    dt : float
        Time step in ``spec.time_unit``; becomes NEST's resolution, so it must
        lie on NEST's time grid (multiples of 0.001 ms).
    dtype : numpy dtype
        ``float64`` only (NEST computes in double precision).
    seed : int, optional
        Seeds the default weights (the same draw as the numpy engine).
    weights, biases : list of arrays, optional
        Initial ``W_l`` (``(n_l, n_{l-1})``) and ``b_l``.
    threads : int
        NEST's ``local_num_threads``.
    neuron_params : dict, optional
        Extra ``gle_rate_neuron`` parameters (checked by NEST; unknown names are refused).
    """

    def __init__(self, spec: NetworkSpec, dt: float, dtype=np.float64, seed=None, weights=None, biases=None,
                 threads: int = 1, neuron_params: dict | None = None):
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        spec.require_rate_based("NestGLENetwork (rate-exact)")
        if spec.loss != "mse":
            raise ValueError(f"the NEST engine supports loss 'mse' only, got {spec.loss!r} "
                             "(a softmax output couples the output neurons, which NEST neurons cannot express)")
        self._setup(spec, dt, dtype, seed, weights, biases, threads, neuron_params)
        self.dtype = np.dtype(np.float64)
        self._tau_m = [layer.tau_m.astype(float).copy() for layer in spec.layers]
        self.optimizer = None  # {"lr": ..., "learn_tau": ..., "lr_tau": ..., "tau_min": ...} once configured
        self.tau_min = None
        self.steps_done = 0
        self.batch_size = None
        self._built = False

    # -- parameters -----------------------------------------------------------
    @property
    def tau_m(self) -> list:
        self._sync_from_nest()
        return [t.copy() for t in self._tau_m]

    @property
    def tau_clamp_events(self) -> int:
        """Number of (neuron, step) pairs at which a learned ``tau_m`` was held at ``tau_min``."""
        if not self._live():
            return 0
        return int(sum(np.sum(self._neurons[0][l].get("tau_clamps")) for l in range(self.n_layers)))

    def set_tau_m(self, tau_m) -> None:
        self._sync_from_nest()
        new = []
        for l, (t, old) in enumerate(zip(tau_m, self._tau_m)):
            t = np.broadcast_to(np.asarray(t, dtype=float), old.shape).copy()
            if np.any(t < self.dt):
                raise ValueError(f"tau_m of layer {l} must be >= dt = {self.dt}, got {t.min()}")
            new.append(t)
        self._tau_m = new
        if self._live():
            self._push_parameters()

    # -- learning -------------------------------------------------------------
    def configure_learning(self, optimizer: str = "sgd", lr: float = 1e-3, learn_tau: bool = False,
                           tau_optimizer: str = "sgd", lr_tau: float = 1e-3, tau_min: float | None = None,
                           learn_tau_r: bool = False, **opt_kwargs) -> None:
        """Per-step SGD in the synapses, ``W += lr e r^T``, ``b += lr e`` (and ``tau_m -= lr_tau e du``)."""
        if learn_tau_r:
            raise ValueError("learn_tau_r is not available on the NEST engine (the tau_r rule of "
                             "docs/hypotheses.md runs on the numpy engine)")
        for name, value in (("optimizer", optimizer), ("tau_optimizer", tau_optimizer)):
            if value != "sgd":
                raise ValueError(f"{name} {value!r} is not available on the NEST engine: its synapses learn with "
                                 "plain SGD (dW = lr e r per step); use the numpy engine for Adam")
        if opt_kwargs:
            raise ValueError(f"unknown optimizer options for SGD: {sorted(opt_kwargs)}")
        for name, value in (("lr", lr), ("lr_tau", lr_tau)):
            if not (value > 0 and np.isfinite(value)):
                raise ValueError(f"learning rate {name} must be positive, got {value}")
        if tau_min is not None and tau_min < self.dt:
            raise ValueError(f"tau_min = {tau_min} must be >= dt = {self.dt}")
        self.tau_min = tau_min
        self.optimizer = {"name": "sgd", "lr": float(lr), "learn_tau": bool(learn_tau), "lr_tau": float(lr_tau),
                          "tau_min": tau_min}

    #: a saved file holds parameters and learning settings, not the dynamic state (engines/base.py)
    saves_state = False

    @property
    def output(self) -> np.ndarray:
        """``r_L(t)`` now, shape ``(batch, n_out)`` (read from the output neurons)."""
        if not self._live():
            raise RuntimeError("the NEST network has no state yet (or another NEST network replaced it): run() first")
        return np.array([np.atleast_1d(self._neurons[b][-1].get("r")) for b in range(self.batch_size)], dtype=float)

    def state_snapshot(self):
        raise NotImplementedError("the NEST engine cannot copy its nodes' dynamic state yet "
                                  "(evaluation with carried state needs the numpy engine)")

    def restore_state(self, snapshot) -> None:
        raise NotImplementedError("the NEST engine cannot restore a dynamic state yet")

    def silence_errors(self) -> None:
        raise NotImplementedError("the NEST engine cannot zero its error units in place yet")

    # -- simulation -----------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """Zero the dynamic state (weights kept): the NEST network is rebuilt for ``batch_size`` copies."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._sync_from_nest()
        self._build(int(batch_size))

    def _build(self, batch: int) -> None:
        paths = build_nest(nestml=False)
        nest = reset_kernel(self)
        nest.Install(str(paths["rate"]))  # module models do not survive ResetKernel
        nest.set(resolution=self.dt_ms, use_wfr=False, local_num_threads=self.threads)
        spec = self.spec
        self._inputs, self._neurons = [], []
        for _ in range(batch):
            self._inputs.append(nest.Create("gle_rate_input", spec.n_in))
            layers = []
            for l, layer in enumerate(spec.layers):
                nodes = self._create_neurons("gle_rate_neuron", [
                    {"tau_r": float(tr) * self._ms, "phi": layer.phi, "gamma": float(spec.gamma),
                     "beta": float(spec.beta), "prospective": bool(spec.prospective_errors),
                     "is_output": l == self.n_layers - 1} for tr in layer.tau_r])
                layers.append(nodes)
            self._neurons.append(layers)
        for b in range(batch):
            pre = self._inputs[b]
            for l, post in enumerate(self._neurons[b]):
                nest.Connect(pre, post, "all_to_all", {"synapse_model": "gle_rate_synapse", "weight": self._W[l]})
                if l > 0:  # errors go down to the neurons of the layer below (not to the input)
                    nest.Connect(post, pre, "all_to_all",
                                 {"synapse_model": "gle_rate_feedback_synapse", "weight": self._W[l].T.copy()})
                pre = post
        self._fwd = [[nest.GetConnections(self._inputs[b] if l == 0 else self._neurons[b][l - 1],
                                          self._neurons[b][l], synapse_model="gle_rate_synapse")
                      for l in range(self.n_layers)] for b in range(batch)]
        self.batch_size = batch
        self._built = True
        self._push_parameters()
        self.steps_done = 0

    def _push_parameters(self) -> None:
        """Write W (both directions), b and tau_m into every copy; pending weight changes are dropped."""
        for b in range(self.batch_size):
            pre = self._inputs[b]
            for l, post in enumerate(self._neurons[b]):
                post.set(b=self._b[l].tolist(), tau_m=(self._tau_m[l] * self._ms).tolist(), drop_pending=True)
                _set_conn_weights(self._fwd[b][l], self._W[l])
                if l > 0:
                    conns = _nest().GetConnections(post, pre, synapse_model="gle_rate_feedback_synapse")
                    _set_conn_weights(conns, self._W[l].T)
                pre = post

    def _sync_from_nest(self) -> None:
        """Copy W (with the change of the last step, applied by NEST at the next delivery), b, tau_m back."""
        if not self._live():
            return
        for l, post in enumerate(self._neurons[0]):
            st = post.get(["b", "tau_m", "eta_last", "e", "steps"])
            self._b[l][:] = st["b"]
            self._tau_m[l][:] = np.asarray(st["tau_m"], dtype=float) / self._ms
            c = self._fwd[0][l].get(["source", "target", "weight", "last_value", "applied"])
            pre_idx = {n: k for k, n in enumerate((self._inputs[0] if l == 0 else self._neurons[0][l - 1]).tolist())}
            post_idx = {n: k for k, n in enumerate(post.tolist())}
            eta = dict(zip(post_idx, np.atleast_1d(st["eta_last"])))
            err = dict(zip(post_idx, np.atleast_1d(st["e"])))
            steps = dict(zip(post_idx, np.atleast_1d(st["steps"])))
            W = self._W[l]
            for s, t, w, r, a in zip(*(np.atleast_1d(c[k]) for k in ("source", "target", "weight", "last_value",
                                                                        "applied"))):
                if steps[t] != a:
                    w = w + eta[t] * (err[t] * r)
                W[post_idx[t], pre_idx[s]] = w

    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True,
            progress: bool = False):
        """Run a sequence ``x`` (steps, batch, n_in); returns what the numpy engine returns.

        Entry ``t`` of each record is the value after step ``t``; ``loss[t]`` is the
        loss of ``r_L(t)`` against ``target[t]``.
        """
        nest = _nest()
        x, target = check_sequence(self.spec, x, target, record, np.float64, NEST_RECORDABLE)
        n_steps, B = x.shape[0], x.shape[1]
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        if learn and B != 1:
            raise ValueError(f"the NEST engine learns with batch size 1 (each synapse holds one weight), got batch {B}")
        if reset or not self._live():
            self.reset(B)
        elif B != self.batch_size:
            raise ValueError(f"x has batch {B}, the network's state has batch {self.batch_size} (use reset=True)")
        opt = self.optimizer or {}
        eta = opt.get("lr", 0.0) if learn else 0.0
        learn_tau = bool(learn and opt.get("learn_tau"))
        want_rec = bool(set(record) & {"r", "u", "u_pro", "e", "r_out", "loss"})
        r_before = None
        if "loss" in record and target is not None:
            r_before = np.array([np.atleast_1d(self._neurons[b][-1].get("r")) for b in range(B)], dtype=float)
        for b in range(B):
            for j, node in enumerate(self._inputs[b]):
                node.set([{"x": x[:, b, j].tolist()}])  # a list of dicts: one per node, never split
            for l, nodes in enumerate(self._neurons[b]):
                nodes.set(eta=eta, eta_tau=opt.get("lr_tau", 0.0) * self._ms ** 2 if learn_tau else 0.0,
                          learn_tau=learn_tau, learn_bias=bool(learn and self.spec.layers[l].bias),
                          tau_min=(opt.get("tau_min") or 0.0) * self._ms, hold_steps=1,
                          record=want_rec, clear_record=True)
            if target is not None:
                out = self._neurons[b][-1]
                for i, node in enumerate(out):
                    node.set([{"target": target[:, b, i].tolist()}])
            else:
                self._neurons[b][-1].set([{"target": []}] * self.spec.n_out)
        try:
            nest.Simulate((n_steps + 1) * self.dt_ms)  # one hold step loads x(0)
        except Exception as err:
            if "diverged" in str(err):
                from ..numpy_.dynamics import DivergenceError
                raise DivergenceError(-1, self.steps_done) from None
            raise
        self.steps_done += n_steps
        out = self._collect(record, n_steps, B, target, r_before)
        if learn_tau and self.tau_min is None:
            for l, t in enumerate(self.tau_m):
                if np.any(t < self.dt):
                    raise ValueError(f"learned tau_m of layer {l} fell to {t.min():g} < dt = {self.dt:g}; lower lr_tau")
        return out

    def _collect(self, record, n_steps, B, target, r_before):
        L, N, sizes = self.n_layers, max(self.spec.sizes), self.spec.sizes
        out = {}
        names = [n for n in ("r", "u", "u_pro", "e") if n in record]
        need_rout = "r_out" in record or "loss" in record
        arrays = {n: np.zeros((n_steps, L, B, N)) for n in names}
        r_out = np.zeros((n_steps, B, self.spec.n_out)) if need_rout else None
        for b in range(B):
            for l, nodes in enumerate(self._neurons[b]):
                keys = [f"rec_{n}" for n in names] + (["rec_r"] if need_rout and l == L - 1 else [])
                if not keys:
                    continue
                st = nodes.get(sorted(set(keys)))
                for n in names:
                    arrays[n][:, l, b, : sizes[l + 1]] = _stack(st[f"rec_{n}"], n_steps)
                if need_rout and l == L - 1:
                    r_out[:, b, :] = _stack(st["rec_r"], n_steps)
        out.update(arrays)
        if "r_out" in record:
            out["r_out"] = r_out
        if "loss" in record:
            loss = np.full(n_steps, np.nan)
            if target is not None:
                prev = np.concatenate([r_before.reshape(1, B, -1), r_out[:-1]], axis=0)
                for t in range(n_steps):
                    loss[t] = loss_and_dloss("mse", prev[t], target[t])[0]
            out["loss"] = loss
        return {k: out[k] for k in record}

    # -- files ----------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Write spec, parameters and learning settings to ``path`` (.npz), atomically (state is not saved)."""
        self._sync_from_nest()
        arrays = {"meta": np.asarray(json.dumps({"spec": self.spec.to_dict(), "dt": self.dt, "engine": "nest",
                                                 "optimizer": self.optimizer, "steps_done": self.steps_done,
                                                 "extra": extra or {}}))}
        for l in range(self.n_layers):
            arrays[f"W{l}"], arrays[f"b{l}"], arrays[f"tau_m{l}"] = self._W[l], self._b[l], self._tau_m[l]
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path) -> "NestGLENetwork":
        """Rebuild a network saved with :meth:`save` (fresh state)."""
        data, meta = read_npz(path, "cortical_gle NEST network file")
        try:
            spec = NetworkSpec.from_dict(meta["spec"])
            L = len(spec.layers)
            W = [data[f"W{l}"] for l in range(L)]
            b = [data[f"b{l}"] for l in range(L)]
            tau = [data[f"tau_m{l}"] for l in range(L)]
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: not a cortical_gle NEST network file ({err})") from None
        net = cls(spec, meta["dt"], weights=W, biases=b)
        net._tau_m = [t.astype(float).copy() for t in tau]
        if meta.get("optimizer"):
            o = meta["optimizer"]
            net.configure_learning("sgd", o["lr"], o["learn_tau"], "sgd", o["lr_tau"], o["tau_min"])
        net.steps_done = int(meta.get("steps_done", 0))
        net.extra = meta.get("extra", {})
        return net


def _stack(values, n_steps) -> np.ndarray:
    """NEST returns one recording per node (a tuple for several nodes): (steps, nodes)."""
    if isinstance(values, (tuple, list)) and len(values) and np.ndim(values[0]) == 1:
        return np.stack([np.asarray(v, dtype=float) for v in values], axis=1)
    return np.asarray(values, dtype=float).reshape(n_steps, -1)


def _set_conn_weights(conns, W) -> None:
    """Set connection weights from a (post, pre) matrix and mark all past changes as applied."""
    c = conns.get(["source", "target"])
    src, tgt = np.atleast_1d(c["source"]), np.atleast_1d(c["target"])
    pre_ids, post_ids = np.unique(src), np.unique(tgt)
    rows = np.searchsorted(post_ids, tgt)
    cols = np.searchsorted(pre_ids, src)
    conns.set(weight=[float(v) for v in W[rows, cols]])
