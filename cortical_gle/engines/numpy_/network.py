"""A runnable GLE network on the numpy engine (a thin stateful wrapper).

The maths is in :mod:`.dynamics`; this class owns the buffers, the loss at the
output, the optimizer, recording and checkpoints.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from ...io import atomic_savez, read_npz
from ...phi import get_phi
from ...spec import NetworkSpec
from ..base import RECORDABLE as CONTRACT_RECORDABLE
from ...units import to_magnitude
from .dynamics import DivergenceError, GLEGrads, GLEParams, GLEState, gle_step, kolen_pollack_step
from .losses import check_target, loss_and_dloss
from .optim import make_optimizer

RECORDABLE = tuple(CONTRACT_RECORDABLE)   # what run() records: see engines/base.py


def blas_single_thread():
    """Context: one BLAS thread while the numba kernels use the cores.

    OpenBLAS threads spin-wait after each product and starve numba's threads
    (measured: 11 ms instead of 1.5 ms per step on the speech network); at the
    layer sizes GLE uses, one BLAS thread is as fast as two.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _phi_groups(spec: NetworkSpec):
    """Consecutive layers sharing a phi become one slice (one ufunc call each)."""
    groups, start = [], 0
    names = [layer.phi for layer in spec.layers]
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            groups.append((slice(start, i), get_phi(names[start])))
            start = i
    return tuple(groups)


def default_weights(spec: NetworkSpec, rng: np.random.Generator):
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases (PyTorch's default)."""
    Ws, bs = [], []
    for n_pre, layer in zip(spec.sizes[:-1], spec.layers):
        k = 1.0 / np.sqrt(n_pre)
        Ws.append(rng.uniform(-k, k, size=(layer.size, n_pre)))
        bs.append(rng.uniform(-k, k, size=layer.size) if layer.bias else np.zeros(layer.size))
    return Ws, bs


class GLENetwork:
    """A layered GLE network advanced step by step (docs/model.md#discrete-time).

    Parameters
    ----------
    spec : NetworkSpec
    dt : float, quantity or str
        Time step; a quantity (``10 * pq.us``) or a string (``"10 us"``) is
        converted to ``spec.time_unit`` exactly as the spec converts its time
        constants, and a plain number is read in ``spec.time_unit``.  Must not
        exceed any time constant.
    dtype : numpy dtype
        ``float64`` (default) or ``float32``.
    seed : int, optional
        Seeds the default weight initialisation.
    weights, biases : list of arrays, optional
        Initial ``W_l`` with shape ``(n_l, n_{l-1})`` and ``b_l``.
    """

    def __init__(self, spec: NetworkSpec, dt: float, dtype=np.float64, seed=None,
                 weights=None, biases=None):
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        spec.require_rate_based("numpy")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        dt = float(to_magnitude(dt, spec.time_unit, "dt"))   # a quantity in any time unit, as the spec reads taus
        spec.check_dt(dt)
        self._spec, self.dt, self.dtype = spec, dt, dtype  # structure; tau_m may learn
        L, N = len(spec.layers), max(spec.sizes)
        self.width = N
        # one flat buffer for W and b so that an optimizer updates both in one call
        self._theta = np.zeros(L * N * N + L * N, dtype=dtype)
        W = self._theta[: L * N * N].reshape(L, N, N)
        b = self._theta[L * N * N:].reshape(L, N)
        tau_m = np.ones((L, N), dtype=dtype)
        tau_r = np.ones((L, N), dtype=dtype)
        for l, layer in enumerate(spec.layers):
            tau_m[l, : layer.size] = layer.tau_m
            tau_r[l, : layer.size] = layer.tau_r
        r_mask = None
        if not all(get_phi(layer.phi).zero_at_zero for layer in spec.layers):
            r_mask = np.zeros((L, 1, N), dtype=dtype)
            for l, layer in enumerate(spec.layers):
                r_mask[l, 0, : layer.size] = 1.0
        self.params = GLEParams(W, b, tau_m, tau_r, dtype.type(spec.gamma), bool(spec.prospective_errors),
                                _phi_groups(spec), r_mask, spec.n_in, spec.n_out,
                                error_tau=dtype.type(spec.error_tau or 0.0))
        self._spec_now = (np.stack([tau_m, tau_r]), spec)   # (the taus a spec describes, that spec): see `spec`
        if weights is None:
            weights, b0 = default_weights(spec, np.random.default_rng(seed))
            biases = b0 if biases is None else biases
        self.set_weights(weights, biases)
        if spec.feedback != "transpose":
            self.params.feedback = spec.feedback
            self.params.B = np.zeros_like(W)
            if spec.feedback in ("random", "kolen_pollack"):
                # drawn like the forward weights, from a stream of its own (seed None: fresh entropy)
                rng = np.random.default_rng(None if seed is None else [int(seed), 0xFEED])
                for l, B_l in enumerate(default_weights(spec, rng)[0]):
                    self.params.B[l, : B_l.shape[0], : B_l.shape[1]] = B_l
            else:
                np.sign(W, out=self.params.B)
        self._W_before = np.empty_like(W) if spec.feedback == "kolen_pollack" else None
        self._grad_flat = np.zeros_like(self._theta)
        self.grads = GLEGrads(self._grad_flat, self._grad_flat[: L * N * N].reshape(L, N, N),
                              self._grad_flat[L * N * N:].reshape(L, N), None)
        self.optimizer = None
        self.tau_optimizer = None
        self.tau_r_optimizer = None
        self.tau_min = None
        self.tau_clamp_events = 0
        self.state: GLEState | None = None
        self.steps_done = 0

    # -- parameters -----------------------------------------------------------
    @property
    def spec(self) -> NetworkSpec:
        """The network's description with its current ``tau_m`` and ``tau_r`` (learned values included).

        The spec given at construction keeps the initial values; this one is
        rebuilt (in ``spec.time_unit``) whenever a time constant has changed since
        the last call, so reports and saved files describe the network as it is.
        """
        made_for, spec = self._spec_now
        now = np.stack([self.params.tau_m, self.params.tau_r])
        if not np.array_equal(made_for, now):
            layers = tuple(dataclasses.replace(layer, tau_m=self.params.tau_m[l, : layer.size].astype(float),
                                               tau_r=self.params.tau_r[l, : layer.size].astype(float))
                           for l, layer in enumerate(self._spec.layers))
            spec = dataclasses.replace(self._spec, layers=layers)
            self._spec_now = (now, spec)
        return spec

    @property
    def n_layers(self) -> int:
        return len(self._spec.layers)

    @property
    def weights(self) -> list:
        """Views ``W_l`` of shape ``(n_l, n_{l-1})`` (writes go to the network)."""
        s = self._spec.sizes
        return [self.params.W[l, : s[l + 1], : s[l]] for l in range(self.n_layers)]

    @property
    def biases(self) -> list:
        s = self._spec.sizes
        return [self.params.b[l, : s[l + 1]] for l in range(self.n_layers)]

    @property
    def tau_m(self) -> list:
        return [self.params.tau_m[l, : n] for l, n in enumerate(self._spec.sizes[1:])]

    @property
    def tau_r(self) -> list:
        return [self.params.tau_r[l, : n] for l, n in enumerate(self._spec.sizes[1:])]

    @property
    def feedback_weights(self) -> list:
        """``B_l`` of shape ``(n_l, n_{l-1})``: layer ``l``'s error reaches layer ``l-1`` as ``B_l^T e_l``.

        Views of ``W_l`` for ``feedback = 'transpose'``.  Layer 0's matrix is
        unused (nothing lies below the first layer).
        """
        s, B = self._spec.sizes, self.params.W if self.params.B is None else self.params.B
        return [B[l, : s[l + 1], : s[l]] for l in range(self.n_layers)]

    def set_weights(self, weights, biases=None) -> None:
        """Set ``W_l`` (and ``b_l``); shapes and finiteness are checked."""
        _assign("weights", weights, self.weights)
        if biases is not None:
            _assign("biases", biases, self.biases)

    def set_tau_m(self, tau_m) -> None:
        for l, (t, view) in enumerate(zip(tau_m, self.tau_m)):
            t = np.broadcast_to(np.asarray(t, dtype=float), view.shape)
            if np.any(t < self.dt):
                raise ValueError(f"tau_m of layer {l} must be >= dt = {self.dt}, got {t.min()}")
            view[...] = t

    # -- learning -------------------------------------------------------------
    def configure_learning(self, optimizer: str = "adam", lr: float = 1e-3, learn_tau: bool = False,
                           tau_optimizer: str = "sgd", lr_tau: float = 1e-3, tau_min: float | None = None,
                           learn_tau_r: bool = False, **opt_kwargs) -> None:
        """Choose the per-step weight optimizer (and, optionally, learn ``tau_m`` and ``tau_r``).

        ``tau_min`` bounds learned time constants from below (the paper uses
        ``10 dt``); every step on which a value is held at the bound is counted
        in :attr:`tau_clamp_events`.  Without it a ``tau_m`` that falls below
        ``dt`` stops the run with an error.  A learned ``tau_r`` (the local rule
        :math:`\dot\tau_r = \eta_\tau e\,\dot u`, docs/hypotheses.md) uses the
        ``tau_m`` optimizer settings and is held at ``>= dt`` (Euler stability of
        the error unit), counted in the same :attr:`tau_clamp_events`.
        """
        if tau_min is not None and tau_min < self.dt:
            raise ValueError(f"tau_min = {tau_min} must be >= dt = {self.dt}")
        self.tau_min = tau_min
        self.tau_clamp_events = 0
        self.optimizer = make_optimizer(optimizer, self._theta.size, lr, dtype=self.dtype, **opt_kwargs)
        # a gradient buffer and an optimizer per learned time constant, or neither
        for name, on in (("tau_m", learn_tau), ("tau_r", learn_tau_r)):
            values = getattr(self.params, name)
            setattr(self.grads, name, np.zeros_like(values) if on else None)
            opt = make_optimizer(tau_optimizer, values.size, lr_tau, dtype=self.dtype) if on else None
            setattr(self, "tau_optimizer" if name == "tau_m" else "tau_r_optimizer", opt)
        self._set_bias_mask()

    def _set_bias_mask(self):
        # layers without bias keep b = 0: zero the gradient there
        self._bias_mask = None
        if not all(layer.bias for layer in self._spec.layers):
            self._bias_mask = np.array([[float(layer.bias)] for layer in self._spec.layers], dtype=self.dtype)

    # -- simulation -----------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """Zero the dynamic state for a batch (weights are kept)."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.state = GLEState.zeros(self.n_layers, int(batch_size), self.width, self.dtype)

    def state_snapshot(self):
        """A copy of the dynamic state (``None`` before the first run), for :meth:`restore_state`."""
        return _copy_state(self.state)

    def restore_state(self, snapshot) -> None:
        """Return to a state taken with :meth:`state_snapshot` (weights and optimizer are not touched)."""
        self.state = _copy_state(snapshot)

    def silence_errors(self) -> None:
        """Zero the error units (``v``, ``e`` and the top-down input): the network as it is without a teacher.

        Without a target the errors only decay, and in float32 they pass through
        subnormal numbers that make every step ~6x slower (measured on the
        MNIST-1D network); silenced, they stay exactly zero.  The forward pass
        is unchanged where ``gamma = 0`` (errors do not nudge the soma).
        """
        if self.state is not None:
            for a in (self.state.v, self.state.e, self.state.top):
                a[...] = 0.0

    @property
    def output(self) -> np.ndarray:
        """Output rates ``r_L(t)``, shape ``(batch, n_out)``."""
        return self.state.R[-1, :, : self._spec.n_out]

    def rates(self, layer: int) -> np.ndarray:
        return self.state.R[layer + 1, :, : self._spec.sizes[layer + 1]]

    def step(self, x, target=None, learn: bool = False, compute_grads: bool = False):
        """One Euler step with input ``x`` (batch, n_in); returns the loss or ``None``.

        With ``learn=True`` the configured optimizer updates the parameters
        after the step (docs/model.md#discrete-time: all weights change after the step);
        ``compute_grads=True`` only fills :attr:`grads` (weights unchanged).
        """
        if self.state is None:
            self.reset(np.shape(x)[0] if np.ndim(x) == 2 else 1)
        st = self.state
        x = np.asarray(x, dtype=self.dtype)
        if x.shape != (st.batch_size, self._spec.n_in):
            raise ValueError(f"input must have shape (batch, n_in) = {(st.batch_size, self._spec.n_in)}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"input contains NaN or inf at step {self.steps_done}")
        if target is not None:
            target = check_target(self._spec.loss, target, st.batch_size, self._spec.n_out)
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        return self._advance(x, target, learn, compute_grads)

    def _advance(self, x, target, learn, compute_grads=False):
        """One step on already validated input (the hot path of :meth:`run`)."""
        loss, out_top = None, None
        if target is not None:
            loss, dloss = loss_and_dloss(self._spec.loss, self.output, target)
            out_top = -self._spec.beta * dloss
        try:
            gle_step(self.params, self.state, x, self.dt, out_top,
                     self.grads if (learn or compute_grads) else None)
        except DivergenceError as err:
            raise DivergenceError(err.layer, self.steps_done) from None
        if learn:
            self.apply_gradients()
        self.steps_done += 1
        return loss

    def apply_gradients(self) -> None:
        if self._bias_mask is not None:
            self.grads.b *= self._bias_mask
        if self._W_before is None:
            self.optimizer.step(self._theta, self._grad_flat)
        else:
            self._W_before[...] = self.params.W
            self.optimizer.step(self._theta, self._grad_flat)
            kolen_pollack_step(self.params.W, self.params.B, self._W_before,
                               self.optimizer.lr * self._spec.feedback_decay)
        if self.tau_optimizer is not None:
            self.tau_optimizer.step(self.params.tau_m.reshape(-1), self.grads.tau_m.reshape(-1))
            self.check_tau()
        if self.tau_r_optimizer is not None:
            self.tau_r_optimizer.step(self.params.tau_r.reshape(-1), self.grads.tau_r.reshape(-1))
            low = self.params.tau_r < self.dt
            if np.any(low):
                self.params.tau_r[low] = self.dt
                self.tau_clamp_events += 1

    def check_tau(self) -> None:
        """Enforce ``tau_min`` (counting clamps) or stop if a learned ``tau_m`` fell below ``dt``."""
        if self.tau_min is not None:
            low = self.params.tau_m < self.tau_min
            if np.any(low):
                self.params.tau_m[low] = self.tau_min
                self.tau_clamp_events += 1
        else:
            low = self.params.tau_m < self.dt
            if np.any(low):
                l, n = map(int, np.argwhere(low)[0])
                raise ValueError(
                    f"learned tau_m of layer {l} neuron {n} fell to {self.params.tau_m[l, n]:g} < dt = {self.dt:g} "
                    f"at step {self.steps_done}; lower lr_tau")

    def run(self, x, target=None, learn: bool = False, record=("r_out", "loss"), reset: bool = True,
            progress: bool = False):
        """Run a whole sequence ``x`` of shape (steps, batch, n_in).

        Returns a dict of recorded arrays, each with time first:
        ``r_out`` (steps, batch, n_out), ``r``/``u``/``u_pro``/``e`` (steps, layers, batch, width,
        pads included) and ``loss`` (steps,).  Entry ``t`` is the value after step ``t``
        (``loss[t]`` is the loss of ``r_L(t)`` against ``target[t]``).
        """
        x, target = check_sequence(self._spec, x, target, record, self.dtype)
        n_steps = x.shape[0]
        if reset or self.state is None:
            self.reset(x.shape[1])
        B = self.state.batch_size
        if x.shape[1] != B:
            raise ValueError(f"x has batch {x.shape[1]}, the network's state has batch {B} (use reset=True)")
        if learn and self.optimizer is None:
            raise RuntimeError("learn=True needs configure_learning() first")
        out = {}
        L, N = self.n_layers, self.width
        for name in record:
            if name == "r_out":
                out[name] = np.empty((n_steps, B, self._spec.n_out), dtype=self.dtype)
            elif name == "loss":
                out[name] = np.full(n_steps, np.nan)
            else:
                out[name] = np.empty((n_steps, L, B, N), dtype=self.dtype)
        it = range(n_steps)
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(it, desc="steps", leave=False)
        st = self.state
        # overflow on the way to a divergence is reported once, as DivergenceError, not as warnings
        with blas_single_thread(), np.errstate(over="ignore", invalid="ignore"):
            self._loop(it, x, target, learn, out, st)
        return out

    def _loop(self, it, x, target, learn, out, st):
        for t in it:
            loss = self._advance(x[t], None if target is None else target[t], learn)
            for name, arr in out.items():
                if name == "r_out":
                    arr[t] = self.output
                elif name == "loss":
                    arr[t] = np.nan if loss is None else loss
                elif name == "r":
                    arr[t] = st.R[1:]
                else:
                    arr[t] = getattr(st, name)
        return out

    def accumulate_gradients(self, x, target, learn_tau: bool = True, initial_state=None) -> dict:
        """Sum of GLE's local gradients over a sequence, weights held fixed.

        Returns lists ``W``, ``b`` (and ``tau_m``, ``tau_r``) shaped like :attr:`weights`,
        directly comparable with :func:`.bptt.bptt_gradient` on the same input and
        ``initial_state`` (a :meth:`state_snapshot`; rest by default).
        """
        x = np.asarray(x)
        if initial_state is None:
            self.reset(x.shape[1])
        else:
            self.restore_state(initial_state)
        keep = self.grads.tau_m, self.grads.tau_r
        if learn_tau:
            self.grads.tau_m = np.zeros_like(self.params.tau_m)
            self.grads.tau_r = np.zeros_like(self.params.tau_r)
        acc = np.zeros_like(self._grad_flat)
        acc_tau = np.zeros_like(self.params.tau_m)
        acc_tau_r = np.zeros_like(self.params.tau_r)
        try:
            for t in range(x.shape[0]):
                self.step(x[t], target[t], compute_grads=True)
                acc += self._grad_flat
                if learn_tau:
                    acc_tau += self.grads.tau_m
                    acc_tau_r += self.grads.tau_r
        finally:
            self.grads.tau_m, self.grads.tau_r = keep
        L, N, s = self.n_layers, self.width, self._spec.sizes
        W = acc[: L * N * N].reshape(L, N, N)
        b = acc[L * N * N:].reshape(L, N)
        out = {"W": [W[l, : s[l + 1], : s[l]].copy() for l in range(L)],
               "b": [b[l, : s[l + 1]].copy() for l in range(L)]}
        if learn_tau:
            out["tau_m"] = [acc_tau[l, : s[l + 1]].copy() for l in range(L)]
            out["tau_r"] = [acc_tau_r[l, : s[l + 1]].copy() for l in range(L)]
        return out

    # -- files ----------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Write spec, parameters, state and optimizer state to ``path`` (.npz), atomically.

        ``extra`` (JSON-serialisable, e.g. a protocol's progress) is stored in
        the same file, so a checkpoint and its bookkeeping can never disagree.
        """
        arrays = {"extra": np.asarray(json.dumps(extra or {})), "theta": self._theta, "tau_m": self.params.tau_m,
                  "tau_r": self.params.tau_r,
                  "meta": np.asarray(json.dumps({"spec": self.spec.to_dict(), "dt": self.dt,
                                                 "dtype": self.dtype.name, "steps_done": self.steps_done,
                                                 "tau_min": self.tau_min,
                                                 "tau_clamp_events": self.tau_clamp_events}))}
        if self.params.B is not None:
            arrays["feedback_B"] = self.params.B
        if self.state is not None:
            for name in ("R", "u", "v", "rp", "top", "e", "du", "u_pro"):
                arrays["state_" + name] = getattr(self.state, name)
        for prefix, opt in (("opt_", self.optimizer), ("topt_", self.tau_optimizer), ("ropt_", self.tau_r_optimizer)):
            if opt is not None:
                arrays[prefix + "name"] = np.asarray(opt.name)
                for k, v in opt.state_dict().items():
                    arrays[prefix + k] = v
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path) -> "GLENetwork":
        """Rebuild a network saved with :meth:`save` (state and optimizer included)."""
        data, meta = read_npz(path, "cortical_gle network file")
        spec = NetworkSpec.from_dict(meta["spec"])
        net = cls(spec, meta["dt"], dtype=meta["dtype"], seed=0)
        if data["theta"].shape != net._theta.shape:
            raise ValueError(f"{path}: parameter buffer has the wrong size for its spec")
        net._theta[...] = data["theta"]
        net.params.tau_m[...] = data["tau_m"]
        if "tau_r" in data:
            net.params.tau_r[...] = data["tau_r"]
        if "feedback_B" in data:
            net.params.B[...] = data["feedback_B"]
        net.steps_done = int(meta["steps_done"])
        net.extra = json.loads(str(data["extra"])) if "extra" in data else {}
        net.tau_min = meta.get("tau_min")
        if "state_R" in data:
            net.reset(data["state_R"].shape[1])
            for name in ("R", "u", "v", "rp", "top", "e", "du", "u_pro"):
                getattr(net.state, name)[...] = data["state_" + name]
        if "opt_name" in data:
            net.configure_learning(str(data["opt_name"]), float(data["opt_lr"]),
                                   learn_tau="topt_name" in data,
                                   tau_optimizer=str(data.get("topt_name", data.get("ropt_name", "sgd"))),
                                   lr_tau=float(data.get("topt_lr", data.get("ropt_lr", 1e-3))),
                                   tau_min=meta.get("tau_min"), learn_tau_r="ropt_name" in data)
            net.optimizer.load_state_dict({k[4:]: v for k, v in data.items() if k.startswith("opt_")})
            for prefix, opt in (("topt_", net.tau_optimizer), ("ropt_", net.tau_r_optimizer)):
                if opt is not None:
                    opt.load_state_dict({k[5:]: v for k, v in data.items() if k.startswith(prefix)})
        net.tau_clamp_events = int(meta.get("tau_clamp_events", 0))
        return net


def _copy_state(state):
    if state is None:
        return None
    return dataclasses.replace(state, **{f.name: getattr(state, f.name).copy() for f in dataclasses.fields(state)})


def check_sequence(spec: NetworkSpec, x, target, record, dtype, recordable=RECORDABLE):
    """Validate a whole input sequence (steps, batch, n_in), its targets and the record names.

    Returns ``x`` as an array of ``dtype`` and ``target`` as an array (or ``None``).
    """
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 3 or x.shape[2] != spec.n_in:
        raise ValueError(f"x must have shape (steps, batch, {spec.n_in}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        t = int(np.argmax(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise ValueError(f"input contains NaN or inf at step {t} of the sequence")
    unknown = set(record) - set(recordable)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; recordable: {', '.join(recordable)}")
    if target is not None:
        n_steps, B = x.shape[:2]
        target = np.asarray(target)
        if len(target) != n_steps:
            raise ValueError(f"target has {len(target)} steps, x has {n_steps}")
        check_target(spec.loss, target.reshape((-1,) + target.shape[2:]) if spec.loss == "mse"
                     else target.reshape(-1), n_steps * B, spec.n_out)
    return x, target


def _assign(name: str, values, views) -> None:
    """Copy a list of arrays into parameter views, checking count, shapes and finiteness first."""
    if len(values) != len(views):
        raise ValueError(f"expected {len(views)} {name}, got {len(values)}")
    arrays = [np.asarray(v, dtype=float) for v in values]
    for l, (a, view) in enumerate(zip(arrays, views)):
        if a.shape != view.shape:
            raise ValueError(f"{name}[{l}] must have shape {view.shape}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{l}] contains NaN or inf")
    for a, view in zip(arrays, views):
        view[...] = a
