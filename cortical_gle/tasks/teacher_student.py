"""Teacher-student regression on a continuous input stream (the paper's LagLine and LagNet, Fig. 5-6).

A teacher GLE network with fixed weights and time constants turns an
Ornstein-Uhlenbeck input into targets; a student of the same architecture
starts elsewhere and learns its weights (and ``tau_m``) online.  Every method
sees the same input stream and the same teacher:

``gle``
    GLE with prospective errors, a parameter update every step (docs/model.md#discrete-time).
``gle_no_prospective``
    The same without error dynamics (``e`` = instantaneous top-down error).
``instantaneous_bp``
    Backprop through the layers within each step, as if the network were
    static: ``delta_l = phi'(u_pro_l) W_{l+1}^T delta_{l+1}``; no temporal
    credit, so ``tau_m`` receives no gradient.
``bptt:T``
    Backpropagation through the Euler steps truncated to windows of ``T`` time
    units: the window's summed loss gradient is applied once per window with the
    learning rate scaled by the window length, as in the paper's code.
``bptt_full``
    The same with a window of ``full_window_tau`` times the teacher's largest
    ``tau_m`` (the exact-gradient reference; truncation error below
    ``exp(-full_window_tau)``).
"""
from __future__ import annotations

import re
import time
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..engines import get_engine
from ..engines.base import GLENetworkContract
from ..engines.numpy_ import GLENetwork
from ..engines.numpy_.bptt import bptt_gradient
from ..engines.numpy_.losses import loss_and_dloss
from ..protocol import ProtocolBase
from ..spec import FEEDBACKS, NetworkSpec
from .fields import NonNegativeTime, Time, TimePerLayer

METHOD = r"^(gle|gle_no_prospective|instantaneous_bp|bptt_full|bptt:[0-9]+(\.[0-9]+)?)$"
#: the methods that run on the run's engine and that a plasticity hypothesis (feedback, learned tau_r) applies
#: to; the baselines keep exact weight transport and run on the numpy engine
GLE_METHODS = ("gle", "gle_no_prospective")


class Network(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sizes: list[int] = Field(min_length=2)
    phi: str = "tanh"
    output_phi: str = "linear"
    bias: bool = False
    tau_r: TimePerLayer = 0.1
    gamma: float = 0.0
    beta: float = Field(1.0, gt=0)
    feedback: Literal[FEEDBACKS] = Field("transpose", description="top-down weights of the GLE methods "
                                         "(docs/hypotheses.md); the baselines keep exact weight transport")
    feedback_decay: float = Field(0.1, ge=0, description="weight decay lambda of the kolen_pollack rule")

    @field_validator("sizes")
    @classmethod
    def _positive(cls, v):
        if any(n < 1 for n in v):
            raise ValueError("layer sizes must be positive")
        return v


class Teacher(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tau_m: TimePerLayer
    weights: list[list[list[float]]] | None = None
    weight_scale: float = Field(1.0, gt=0, description="scale of the default random weights")
    seed: int = 1234


class Student(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight_init: Literal["uniform01", "default"] = "uniform01"
    tau_m_init: Union[tuple[Time, Time], Literal["teacher"]] = (0.1, 1.0)
    learn_tau: bool = True
    learn_tau_r: bool = Field(False, description="GLE methods also learn tau_r (docs/hypotheses.md)")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["ou"] = "ou"
    n: int = Field(1, ge=1)
    tau: Time = 1.0
    sigma: float = Field(1.0, gt=0)


class Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    t_init: NonNegativeTime = Field(50.0, description="time of dynamics before learning starts")
    t_train: Time = 4000.0
    batch: int = Field(100, ge=1)


class Learning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-4, gt=0)
    tau_min: Time | None = Field(None, description="lower bound for learned tau_m (default 10 dt)")
    full_window_tau: float = Field(10.0, gt=0, description="bptt_full's window in multiples of the largest tau_m")


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loss_every: Time = Field(10.0, description="time per loss-curve point")
    trace_length: Time = Field(20.0, description="time of output/target traces at start and end")
    checkpoint_every: int = Field(50, ge=1, description="chunks between checkpoints of a running method")


class Config(ProtocolBase):
    task: Literal["teacher-student"]
    dt: Time = 0.01
    network: Network
    teacher: Teacher
    student: Student = Student()
    input: Input = Input()
    timing: Timing = Timing()
    learning: Learning = Learning()
    methods: list[Annotated[str, Field(pattern=METHOD)]] = Field(min_length=1)
    record: Record = Record()


# -- set-up ------------------------------------------------------------------
def _spec(cfg: Config, tau_m, prospective=True, hypothesis=False) -> NetworkSpec:
    """The network; ``hypothesis=True`` (GLE methods only) applies ``network.feedback``."""
    n = cfg.network
    fb = dict(feedback=n.feedback, feedback_decay=n.feedback_decay) if hypothesis else {}
    return NetworkSpec.feedforward(n.sizes, tau_m=tau_m, tau_r=n.tau_r, phi=n.phi, output_phi=n.output_phi,
                                   bias=n.bias, gamma=n.gamma, beta=n.beta, prospective_errors=prospective, **fb)


def build_teacher(cfg: Config) -> GLENetworkContract:
    """The teacher (a reference signal generator, always on the numpy engine)."""
    net = get_engine("numpy").build(_spec(cfg, cfg.teacher.tau_m), cfg.dt, seed=cfg.teacher.seed)
    if cfg.teacher.weights is not None:
        net.set_weights([np.asarray(w) for w in cfg.teacher.weights])
    else:
        net.set_weights([w * cfg.teacher.weight_scale for w in net.weights])
    return net


def build_student(cfg: Config, seed: int, prospective=True, hypothesis=False,
                  engine: str = "numpy") -> GLENetworkContract:
    rng = np.random.default_rng(seed)
    sizes = cfg.network.sizes
    if cfg.student.tau_m_init == "teacher":
        tau_m = [t.copy() for t in build_teacher(cfg).tau_m]
    else:
        lo, hi = cfg.student.tau_m_init
        tau_m = [rng.uniform(lo, hi, n) for n in sizes[1:]]
    net = get_engine(engine).build(_spec(cfg, tau_m, prospective, hypothesis), cfg.dt, seed=seed)
    if cfg.student.weight_init == "uniform01":
        net.set_weights([rng.uniform(0, 1, w.shape) for w in net.weights])
    return net


class Stream:
    """The shared input stream and the teacher's targets, computed once per run (deterministic).

    Stored as float32 (inputs and targets rounded to ~1e-7 relative): at the
    paper's LagLine size this is ~0.3 GB instead of recomputing the teacher for
    every method.
    """

    def __init__(self, cfg: Config, seed: int, n_steps: int):
        rng = np.random.default_rng([seed, 7])
        i, B = cfg.input, cfg.timing.batch
        a = np.exp(-cfg.dt / i.tau)
        s = i.sigma * np.sqrt(1 - a * a)
        self.x = np.empty((n_steps, B, i.n), dtype=np.float32)
        prev = i.sigma * rng.standard_normal((B, i.n))
        block = 10_000
        for k in range(0, n_steps, block):  # noise drawn block-wise: memory stays small
            noise = rng.standard_normal((min(block, n_steps - k), B, i.n)) * s
            for t in range(len(noise)):
                prev = a * prev + noise[t]
                self.x[k + t] = prev
        teacher = build_teacher(cfg)
        teacher.reset(B)
        self.y_after = np.empty((n_steps, B, cfg.network.sizes[-1]), dtype=np.float32)
        for k in range(0, n_steps, block):
            self.y_after[k:k + block] = teacher.run(self.x[k:k + block], record=("r_out",), reset=False)["r_out"]

    def get(self, pos: int, n: int):
        """``x``, ``y`` aligned with the loss convention (teacher output before each step), ``y_after``."""
        x = self.x[pos:pos + n].astype(float)
        y_after = self.y_after[pos:pos + n].astype(float)
        before = self.y_after[pos - 1:pos].astype(float) if pos > 0 else np.zeros_like(y_after[:1])
        return x, np.concatenate([before, y_after[:-1]]), y_after


def _instantaneous_bp_step(net: GLENetwork, x, y_after):
    """Forward step, then backprop through the layers at this instant (no temporal credit)."""
    net._advance(x, None, learn=False)
    p, st = net.params, net.state
    L, n_out, B = net.n_layers, net.spec.n_out, st.batch_size
    delta = np.zeros_like(st.u)
    delta[L - 1, :, :n_out] = net.spec.beta * (y_after - net.output) * st.rp[L - 1, :, :n_out]
    for l in range(L - 2, -1, -1):
        delta[l] = st.rp[l] * (delta[l + 1] @ p.W[l + 1])
    if p.r_mask is not None:
        delta *= p.r_mask
    np.matmul(delta.transpose(0, 2, 1), st.R[:L], out=net.grads.W)  # presynaptic rates at this instant
    np.sum(delta, axis=1, out=net.grads.b)
    net.grads.flat *= -1.0 / B
    if net.grads.tau_m is not None:
        net.grads.tau_m[...] = 0.0
    net.apply_gradients()


def _params(net):
    return {"weights": [w.tolist() for w in net.weights], "biases": [b.tolist() for b in net.biases],
            "tau_m": [t.tolist() for t in net.tau_m]}


def train_method(cfg: Config, method: str, ctx, stream: Stream, bar=None) -> dict:
    """Run one method on the shared stream; checkpoints let an interrupted run resume exactly."""
    dt, tm = cfg.dt, cfg.timing
    n_init, n_train = int(round(tm.t_init / dt)), int(round(tm.t_train / dt))
    every = max(1, int(round(cfg.record.loss_every / dt)))
    trace_n = int(round(cfg.record.trace_length / dt))
    if method.startswith("bptt"):
        if method == "bptt_full":
            window_t = cfg.learning.full_window_tau * float(np.max(np.concatenate(
                [np.ravel(t) for t in build_teacher(cfg).tau_m])))
        else:
            window_t = float(method.split(":")[1])
        chunk = max(1, int(round(window_t / dt)))
    else:
        window_t, chunk = None, every
    chunk = min(chunk, n_train)
    # GLE methods run on the run's engine; the baselines reach into the numpy engine (exact gradients,
    # instantaneous backprop through its stored state), so they always run there (metrics say so)
    engine = ctx.engine if method in GLE_METHODS else "numpy"
    ckpt = f"checkpoint_{re.sub('[^a-z0-9_]', '_', method)}.npz"
    net = ctx.load_checkpoint(ckpt, load=get_engine(engine).load)   # only this run's own checkpoint
    if net is not None:
        log = net.extra
    else:
        net = build_student(cfg, ctx.seed, prospective=(method != "gle_no_prospective"),
                            hypothesis=method in GLE_METHODS, engine=engine)
        lr = cfg.learning.lr * (chunk if method.startswith("bptt") else 1)
        learn_tau = cfg.student.learn_tau and method != "instantaneous_bp"
        net.configure_learning(cfg.learning.optimizer, lr=lr, learn_tau=learn_tau, tau_optimizer=cfg.learning.optimizer,
                               lr_tau=lr, tau_min=cfg.learning.tau_min or 10 * dt,
                               learn_tau_r=cfg.student.learn_tau_r and method in GLE_METHODS)
        net.reset(tm.batch)
        log = {"chunks_done": 0, "steps": 0, "loss_sum": 0.0, "loss_n": 0, "loss_curve": [],
               "loss_t": [], "tau_curve": [], "trace_start": [], "trace_end": [], "train_losses": [],
               "train_time_s": 0.0}
        # dynamics settle before learning starts (no learning, student follows the stream)
        pos = 0
        while pos < n_init:
            n = min(every, n_init - pos)
            x, y, _ = stream.get(pos, n)
            net.run(x, y, reset=False, record=())
            pos += n
    t0 = time.perf_counter()
    while log["steps"] < n_train:
        n = min(chunk, n_train - log["steps"])
        x, y, y_after = stream.get(n_init + log["steps"], n)
        if method in GLE_METHODS:
            out = net.run(x, y, learn=True, reset=False, record=("r_out", "loss"))
            losses, r_out = out["loss"], out["r_out"]
        elif method == "instantaneous_bp":
            losses, r_out = np.empty(n), np.empty((n,) + net.output.shape)
            for t in range(n):
                losses[t] = loss_and_dloss(net.spec.loss, net.output, y[t])[0]
                _instantaneous_bp_step(net, x[t], y_after[t])
                r_out[t] = net.output
        else:
            g = bptt_gradient(net, x, y, initial_state=net.state, padded=True)
            losses, r_out, net.state = g["losses"], g["r_after"], g["state"]
            # the window's gradient, per step (lr was scaled by the window), through the network's own update
            net.grads.flat[...] = g["flat"] / n
            if net.grads.tau_m is not None:
                net.grads.tau_m.reshape(-1)[...] = g["tau_flat"] / n
            net.apply_gradients()
        # bookkeeping: loss curve on a fixed grid of `every` steps, tau trajectory, traces
        for k in range(0, n):
            log["loss_sum"] += losses[k]
            log["loss_n"] += 1
            if log["loss_n"] == every:
                log["loss_curve"].append(log["loss_sum"] / every)
                log["loss_t"].append((log["steps"] + k + 1) * dt)
                log["tau_curve"].append([t.tolist() for t in net.tau_m])
                log["loss_sum"], log["loss_n"] = 0.0, 0
        log["train_losses"].append(float(np.mean(losses)))
        pair = np.stack([r_out[:, 0, 0], y_after[:, 0, 0]], axis=1)
        if len(log["trace_start"]) < trace_n:
            log["trace_start"].extend(pair[: trace_n - len(log["trace_start"])].tolist())
        log["trace_end"] = (log["trace_end"] + pair.tolist())[-trace_n:]
        log["steps"] += n
        log["chunks_done"] += 1
        if bar is not None:
            bar.update(n)
            bar.set_postfix(method=method, loss=f"{np.mean(losses):.2e}")
        ctx.partial[method] = {"loss_curve": log["loss_curve"], "steps": log["steps"]}
        if log["chunks_done"] % cfg.record.checkpoint_every == 0:
            log["train_time_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            ctx.save_checkpoint(net, ckpt, log)
    log["train_time_s"] += time.perf_counter() - t0
    curve = np.asarray(log["loss_curve"])
    tail = max(1, len(curve) // 10)
    return {"method": method, "engine": engine, "window_time_units": window_t, "loss_t": log["loss_t"],
            "loss_curve": curve.tolist(), "final_loss": float(np.mean(curve[-tail:])),
            "learned_tau_m": [t.tolist() for t in net.tau_m], "learned_tau_r": [np.broadcast_to(layer.tau_r, layer.size).tolist() for layer in net.spec.layers],
            "feedback": net.spec.feedback, "tau_curve": log["tau_curve"],
            "final_params": _params(net), "tau_clamp_events": net.tau_clamp_events,
            "train_time_s": round(log["train_time_s"], 2),
            "_trace_start": log["trace_start"], "_trace_end": log["trace_end"]}


def run(cfg: Config, ctx) -> dict:
    done = ctx.load_state("methods_done.json", {})   # methods this run finished before an interrupt
    n_steps = int(round((cfg.timing.t_train) / cfg.dt))
    bar = None
    if ctx.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_steps * len(cfg.methods), desc="teacher-student", unit="step", unit_scale=True)
    results = {}
    stream = None
    for method in cfg.methods:
        if method in done:
            results[method] = done[method]
            if bar is not None:
                bar.update(n_steps)
            continue
        if stream is None:
            stream = Stream(cfg, ctx.seed, int(round(cfg.timing.t_init / cfg.dt)) + n_steps)
        results[method] = train_method(cfg, method, ctx, stream, bar)
        done[method] = results[method]
        ctx.save_state("methods_done.json", done)
    if bar is not None:
        bar.close()
    teacher = build_teacher(cfg)
    _plot(ctx, cfg, results, teacher)
    for r in results.values():
        r.pop("_trace_start", None)
        r.pop("_trace_end", None)
    summary = {m: r["final_loss"] for m, r in results.items()}
    out = {"teacher_tau_m": [t.tolist() for t in teacher.tau_m], "teacher_params": _params(teacher),
           "methods": results, "final_loss": summary}
    ref = "bptt_full" if "bptt_full" in results else None
    if ref and "gle" in results:
        out["gle_over_bptt_full"] = summary["gle"] / summary[ref]
    if "gle" in results and "instantaneous_bp" in results:
        out["instantaneous_bp_over_gle"] = summary["instantaneous_bp"] / summary["gle"]
    if "gle" in results and cfg.student.learn_tau:
        rel = [np.abs(np.asarray(a) / np.asarray(b) - 1).max()
               for a, b in zip(results["gle"]["learned_tau_m"], out["teacher_tau_m"])]
        out["gle_tau_m_max_rel_error"] = float(max(rel))
        out.update(tau_m_errors(results["gle"]["learned_tau_m"], out["teacher_tau_m"]))
    return out


def tau_m_errors(learned, teacher) -> dict:
    r"""Errors of learned ``tau_m`` that do not depend on how hidden neurons are numbered.

    Hidden neurons of a layer are interchangeable (any permutation of them, with their
    weights, is the same network), so each layer's values are compared sorted:
    ``tau_m_sorted_rel_error`` is :math:`\max_l \max_i |\tau^{(l)}_{(i)}/\tau^{*(l)}_{(i)} - 1|`
    over the order statistics :math:`(i)`; ``tau_m_output_rel_error`` is the output layer's
    (whose neurons are fixed by the target).
    """
    rel = [np.abs(np.sort(np.ravel(a)) / np.sort(np.ravel(b)) - 1) for a, b in zip(learned, teacher)]
    return {"gle_tau_m_sorted_rel_error": float(max(r.max() for r in rel)),
            "gle_tau_m_output_rel_error": float(rel[-1].max())}


def _plot(ctx, cfg, results, teacher):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (m, r) in enumerate(results.items()):
        ax.plot(r["loss_t"], r["loss_curve"], label=f"{m} (final {r['final_loss']:.2e})", c=f"C{i}")
    ax.set(yscale="log", xlabel="training time (time units)", ylabel=f"loss (mean over {cfg.record.loss_every:g})",
           title=f"{ctx.out_dir.name}: loss")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "loss_curves.png")

    teacher_tau = np.concatenate([np.ravel(t) for t in teacher.tau_m])
    if cfg.student.learn_tau:
        n_show = min(len(teacher_tau), 4)
        fig, axes = plt.subplots(1, n_show, figsize=(3.5 * n_show, 3.2), squeeze=False)
        for j in range(n_show):
            ax = axes[0, j]
            for i, (m, r) in enumerate(results.items()):
                if r["tau_curve"]:
                    taus = np.array([np.concatenate([np.ravel(t) for t in tc]) for tc in r["tau_curve"]])
                    ax.plot(r["loss_t"], taus[:, j], c=f"C{i}", label=m)
            ax.axhline(teacher_tau[j], c="k", ls="--", lw=1, label="teacher")
            ax.set(xlabel="time units", title=f"tau_m of neuron {j}")
        axes[0, 0].legend(fontsize=6)
        fig.tight_layout()
        ctx.save_figure(fig, "tau_m_trajectories.png")

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 1.8 * len(results)), squeeze=False, sharex="col")
    for i, (m, r) in enumerate(results.items()):
        for j, key in enumerate(("_trace_start", "_trace_end")):
            tr = np.asarray(r.get(key) or [])
            if tr.size:
                t = np.arange(len(tr)) * cfg.dt
                axes[i, j].plot(t, tr[:, 1], c="k", lw=1, label="target")
                axes[i, j].plot(t, tr[:, 0], c=f"C{i}", lw=1, label="output")
            axes[i, j].set_ylabel(m, fontsize=7)
    axes[0, 0].set_title("start of training")
    axes[0, 1].set_title("end of training")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    ctx.save_figure(fig, "output_vs_target.png")
