"""Online sequence classification with GLE: the epoch loop shared by MNIST-1D and speech commands.

The network receives the output error (cross-entropy against the label) at
every Euler step and learns at every step.  Each batch starts from rest, or,
with ``carry_state``, from where the previous batch left the network (the
paper's code never resets).  The prediction is the argmax of the output summed
over the sequence from ``readout_start`` on; ``readout_start = 0`` sums all
steps, as the paper's code does.  Skipping the first few time units leaves out
the transient in which the output still answers the previous sequence (carried
state) or rises from rest.  Accuracies of the all-steps readout are recorded
too (``<set>_acc_all_steps``).  Checkpoints (weights, optimizer state and
progress in one atomic file) are written every epoch, so ``--resume``
continues exactly.
"""
from __future__ import annotations

import time
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engines import get_engine
from ..engines.base import GLENetworkContract
from ..engines.numpy_.losses import loss_and_dloss
from ..networks import lagged_mlp_network
from ..protocol import ProtocolBase
from ..spec import FEEDBACKS
from .fields import NonNegativeTime, Time


class LaggedNetwork(BaseModel):
    """Settings of the paper's lagged GLE classifier (:func:`cortical_gle.networks.lagged_mlp_network`)."""

    model_config = ConfigDict(extra="forbid")
    n_hidden: int = Field(6, ge=1)
    n_le: int = Field(17, ge=0)
    n_li: int = Field(36, ge=0)
    tau: Time = 1.2
    beta: float = Field(1.0, gt=0)
    dtype: Literal["float32", "float64"] = "float32"
    feedback: Literal[FEEDBACKS] = Field("transpose", description="top-down weights of GLE (docs/hypotheses.md); "
                                         "the MLP baseline keeps exact backprop")
    feedback_decay: float = Field(0.1, ge=0, description="weight decay lambda of the kolen_pollack rule")
    li_tau_r: Time | None = Field(None, description="tau_r of the LI units (None: dt, the paper's, no look-ahead); "
                                  "a larger one lowers their error unit's gain for a sign flip every step from "
                                  "2 tau_m/dt - 1 to (2 tau_m - dt)/(2 li_tau_r - dt) (docs/model.md)")
    error_tau: Time | None = Field(None, description="floor on the error units' relaxation time (None: tau_r, the "
                                   "paper's): bounds an LI unit's error-unit gain for a sign flip every step at "
                                   "(2 tau_m - dt)/(2 error_tau - dt) and lags its error by error_tau - dt; "
                                   "the forward units keep their memory (docs/model.md)")


def network_factory(nw: LaggedNetwork, n_in: int, n_out: int, dt: float, lr: float, seed: int,
                    engine: str = "numpy"):
    """A function that builds the classifier on ``engine`` with per-step Adam (what :func:`train_online` calls)."""
    def make_net() -> GLENetworkContract:
        spec = lagged_mlp_network(n_in, n_out, nw.n_hidden, nw.n_le, nw.n_li, nw.tau, dt, nw.beta,
                                  li_tau_r=nw.li_tau_r, feedback=nw.feedback, feedback_decay=nw.feedback_decay,
                                  error_tau=nw.error_tau)
        net = get_engine(engine).build(spec, dt, dtype=nw.dtype, seed=seed)
        net.configure_learning("adam", lr=lr)
        return net
    return make_net


class Training(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(150, ge=1)
    batch: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam, applied every step")
    plateau_patience: int = Field(2, ge=1, description="epochs without a lower monitored loss before lr is halved")
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    carry_state: bool = Field(False, description="continue from the previous batch's state instead of from rest "
                                                 "(the paper's code never resets)")
    readout_start: NonNegativeTime = Field(0.0, description="the prediction sums the output from this time after "
                                                            "the sequence start on (0: all steps)")
    monitor: Literal["val", "test"] = Field("val", description="set whose loss drives the learning-rate plateau: "
                                                                "'val' (held out from training) or 'test' (the "
                                                                "paper's code; leaks test information into training)")
    keep: Literal["last", "best"] = Field("last", description="weights the run ends with and reports: the last "
                                                              "epoch's, or those of the epoch with the lowest "
                                                              "monitored loss (early stopping; needs monitor='val')")

    @model_validator(mode="after")
    def _no_selection_on_test(self):
        if self.keep == "best" and self.monitor == "test":
            raise ValueError("training.keep = 'best' picks the epoch by the monitored loss; with "
                             "training.monitor = 'test' that is model selection on the test set: use monitor = 'val'")
        return self


class MLP(BaseModel):
    """Settings of the offline MLP baseline (:func:`cortical_gle.baselines.train_mlp`)."""

    model_config = ConfigDict(extra="forbid")
    hidden: list[int] = [256, 256]
    epochs: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch: int = Field(100, ge=1)


class ClassifierProtocol(ProtocolBase):
    """Keys every online-classification protocol has: GLE trained online and the MLP baseline."""

    methods: list[Literal["gle", "mlp"]] = Field(["gle", "mlp"], min_length=1)
    training: Training = Training()
    mlp: MLP = MLP()


def _reset(net: GLENetworkContract, carry_state: bool, batch: int) -> bool:
    return not carry_state or net.state is None or net.state.batch_size != batch


def readout_steps(readout_start: float, dt: float, n_steps: int) -> int:
    """Number of leading steps the readout skips; an error if nothing would be left."""
    skip = int(round(readout_start / dt))
    if skip >= n_steps:
        raise ValueError(f"readout_start = {readout_start} leaves no step to read out: the sequence has "
                         f"{n_steps} steps of dt = {dt} ({n_steps * dt:g} time units)")
    return skip


def predict(r_out: np.ndarray, skip: int = 0) -> np.ndarray:
    """Class per sequence: argmax of the output ``r_out (steps, B, classes)`` summed from step ``skip`` on."""
    return r_out[skip:].sum(axis=0).argmax(axis=1)


def evaluate(net: GLENetworkContract, get_batch: Callable, n: int, batch: int, carry_state: bool = False,
             readout_start: float = 0.0):
    """Predictions (readout from ``readout_start``), all-steps predictions and mean per-step loss over
    ``n`` sequences, without learning.

    The network runs on the inputs alone: no label reaches it (its error units
    are silenced and no output error enters them), and the loss is computed
    afterwards from the recorded outputs.  The network's state is restored when the evaluation
    ends, so with ``carry_state`` the next training batch continues from the
    last *training* batch: nothing of an evaluated set reaches training.
    """
    preds, preds_all, loss_sum = [], [], 0.0
    saved = net.state_snapshot()
    net.silence_errors()
    try:
        for k in range(0, n, batch):
            xb, yb = get_batch(np.arange(k, min(n, k + batch)))
            skip = readout_steps(readout_start, net.dt, len(xb))
            r = net.run(xb, record=("r_out",), reset=_reset(net, carry_state, len(yb)))["r_out"]
            preds.append(predict(r, skip))
            preds_all.append(predict(r))
            loss_sum += sequence_loss(net.spec.loss, r, yb) * len(yb)
    finally:
        net.restore_state(saved)
    return np.concatenate(preds), np.concatenate(preds_all), loss_sum / n


def sequence_loss(kind: str, r_out: np.ndarray, labels: np.ndarray) -> float:
    """Mean over steps and sequences of the output loss of ``r_out (steps, B, classes)`` against ``labels (B,)``."""
    steps, B, n_out = r_out.shape
    return loss_and_dloss(kind, r_out.reshape(steps * B, n_out), np.tile(labels, steps))[0]


def readout_accuracy(net: GLENetworkContract, get_batch: Callable, n: int, batch: int, starts, carry_state: bool = False):
    """Accuracy (%) over ``n`` sequences of the readout from each step in ``starts``, without learning.

    Shows how the choice of ``readout_start`` matters for a trained network.
    """
    starts = np.asarray(starts, dtype=int)
    correct = np.zeros(len(starts))
    saved = net.state_snapshot()
    net.silence_errors()
    try:
        for k in range(0, n, batch):
            xb, yb = get_batch(np.arange(k, min(n, k + batch)))
            r = net.run(xb, record=("r_out",), reset=_reset(net, carry_state, len(yb)))["r_out"]
            tail = np.cumsum(r[::-1], axis=0)[::-1]       # tail[s] = r[s:].sum(0)
            correct += (tail[starts].argmax(axis=2) == yb).sum(axis=1)
    finally:
        net.restore_state(saved)
    return 100.0 * correct / n


def plot_readout(ctx, curve: dict, readout_start: float, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for s in ("train", "test", "val"):
        if f"{s}_acc" in curve:
            ax.plot(curve["start_time"], curve[f"{s}_acc"], marker=".", label=s)
    ax.axvline(readout_start, c="0.5", ls=":", label=f"readout_start = {readout_start:g}")
    ax.set(xlabel="readout start (time units after sequence start)", ylabel="accuracy (%)", title=title)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "readout_start.png")


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of true class ``i`` predicted as ``j``."""
    cm = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def train_online(make_net: Callable[[], GLENetworkContract], train: tuple, evals: dict, tr: Training, ctx,
                 monitor: str | None = None, name: str = "gle") -> dict:
    """Train ``make_net()`` online; ``train`` and each of ``evals`` are ``(get_batch, labels)``.

    ``get_batch(indices)`` returns ``(x (steps, B, n_in), y (B,))``.  ``monitor``
    names the evaluation set whose loss drives the learning-rate plateau
    (default ``tr.monitor``).
    Returns per-epoch ``train_acc``, ``train_loss``, ``<set>_acc``, ``<set>_loss``,
    ``lr``, the last predictions ``<set>_pred``, ``train_time_s``, ``n_params``,
    ``final_<set>_acc`` and the trained network (``net``).  With ``tr.keep = "best"``
    the network, the predictions and every ``final_*`` value are those of the
    epoch with the lowest monitored loss (``kept_epoch``, counted from 1); the
    weights of that epoch are kept in ``checkpoint_<name>_best.npz``.
    """
    get_train, y_train = train
    n_train = len(y_train)
    monitor = monitor or tr.monitor
    if monitor not in evals:
        raise ValueError(f"training.monitor = {monitor!r}, but the task evaluates only {', '.join(evals)}")
    if tr.keep == "best" and monitor.startswith("test"):
        raise ValueError(f"training.keep = 'best' would pick the epoch on the test set {monitor!r}")
    ckpt, ckpt_best = f"checkpoint_{name}.npz", f"checkpoint_{name}_best.npz"
    net = ctx.load_checkpoint(ckpt)   # only this run's own checkpoint, when resuming
    if net is not None:
        prog = net.extra
    else:
        net = make_net()
        prog = {"epoch": 0, "train_acc": [], "train_loss": [], "lr": [], "best_loss": None, "bad_epochs": 0,
                "train_time_s": 0.0, "best_epoch": None,
                **{f"{s}_{k}": [] for s in evals for k in ("acc", "acc_all_steps", "loss")}}
    ctx.partial[name] = prog
    n_batches = (n_train + tr.batch - 1) // tr.batch
    bar = None
    if ctx.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=tr.epochs * n_batches, initial=prog["epoch"] * n_batches, desc=name, unit="batch")
    for epoch in range(prog["epoch"], tr.epochs):
        t0 = time.perf_counter()
        order = np.random.default_rng([ctx.seed, epoch]).permutation(n_train)
        correct, loss_sum = 0, 0.0
        for k in range(0, n_train, tr.batch):
            idx = np.sort(order[k:k + tr.batch])
            xb, yb = get_train(idx)
            skip = readout_steps(tr.readout_start, net.dt, len(xb))
            out = net.run(xb, np.broadcast_to(yb, (len(xb), len(yb))), learn=True, record=("r_out", "loss"),
                          reset=_reset(net, tr.carry_state, len(yb)))
            correct += int((predict(out["r_out"], skip) == yb).sum())
            loss_sum += float(np.mean(out["loss"])) * len(yb)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / (k + len(idx)):.3f}",
                                acc=f"{100 * correct / (k + len(idx)):.1f}%")
        prog["train_time_s"] += time.perf_counter() - t0
        prog["train_acc"].append(100.0 * correct / n_train)
        prog["train_loss"].append(loss_sum / n_train)
        prog["lr"].append(net.optimizer.lr)
        preds = {}
        for s, (get, ys) in evals.items():
            preds[s], pred_all, loss = evaluate(net, get, len(ys), tr.batch, tr.carry_state, tr.readout_start)
            prog[f"{s}_acc"].append(100.0 * float(np.mean(preds[s] == ys)))
            prog[f"{s}_acc_all_steps"].append(100.0 * float(np.mean(pred_all == ys)))
            prog[f"{s}_loss"].append(loss)
        # halve the learning rate when the monitored loss stops improving (ReduceLROnPlateau)
        loss = prog[f"{monitor}_loss"][-1]
        improved = prog["best_loss"] is None or loss < prog["best_loss"]
        if tr.keep == "last" or improved:
            prog.update({f"{s}_pred": p.tolist() for s, p in preds.items()})
        if improved:
            prog["best_loss"], prog["bad_epochs"], prog["best_epoch"] = loss, 0, epoch + 1
            if tr.keep == "best":   # written before the progress file: a resume redoes this epoch identically
                ctx.save_checkpoint(net, ckpt_best, {"epoch": epoch + 1})
        else:
            prog["bad_epochs"] += 1
            if prog["bad_epochs"] > tr.plateau_patience:
                net.optimizer.lr *= tr.plateau_factor
                prog["bad_epochs"] = 0
        prog["epoch"] = epoch + 1
        ctx.save_checkpoint(net, ckpt, prog)   # one atomic file: weights, optimizer and progress agree
    if bar is not None:
        bar.close()
    res = {k: v for k, v in prog.items() if k not in ("epoch", "best_loss", "bad_epochs", "best_epoch")}
    res["n_params"] = int(sum(w.size for w in net.weights) + sum(b.size for b in net.biases))
    kept = len(res["train_acc"])
    if tr.keep == "best":
        kept = prog.get("best_epoch")
        net = ctx.load_checkpoint(ckpt_best, resuming_only=False)
        held = None if net is None else net.extra.get("epoch")
        if held is None or held != kept:
            raise RuntimeError(f"{ctx.path(ckpt_best)} holds {'no network' if net is None else f'epoch {held}'}, "
                               f"not the best epoch {kept}: the run folder was changed under the run")
    res["kept_epoch"] = kept
    for s in ("train",) + tuple(evals):
        res[f"final_{s}_acc"] = res[f"{s}_acc"][kept - 1]
    for s in evals:
        res[f"final_{s}_acc_all_steps"] = res[f"{s}_acc_all_steps"][kept - 1]
    res["net"] = net
    return res


def plot_learning_curves(ctx, results: dict, sets: tuple, references: dict, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = {"train": "--", "val": "-.", "test": "-"}
    for i, (name, res) in enumerate(results.items()):
        for s in ("train",) + tuple(sets):
            if f"{s}_acc" in res:
                ep = np.arange(1, len(res[f"{s}_acc"]) + 1)
                ax.plot(ep, res[f"{s}_acc"], c=f"C{i}", ls=styles.get(s, "-"), label=f"{name} {s}")
        if res.get("kept_epoch") not in (None, len(res.get("train_acc", []))):
            ax.axvline(res["kept_epoch"], c=f"C{i}", lw=0.7, ls=":", label=f"{name}: kept epoch (lowest val loss)")
    for j, (label, value) in enumerate(references.items()):
        ax.axhline(value, c=f"0.{3 + 2 * j}", lw=0.7, ls=":", label=label)
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title, ylim=(0, 100))
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "learning_curves.png")


def plot_confusion(ctx, results: dict, class_names: list, key: str = "test") -> None:
    import matplotlib.pyplot as plt

    n = len(class_names)
    fig, axes = plt.subplots(1, len(results), figsize=(0.45 * n * len(results) + 2, 0.45 * n + 1.5), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        cm = np.asarray(res["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
        ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
               title=f"{name}: {res[f'final_{key}_acc']:.1f} % {key}")
        ax.set_xticklabels(class_names, rotation=90, fontsize=7)
        ax.set_yticklabels(class_names, fontsize=7)
    fig.tight_layout()
    ctx.save_figure(fig, "confusion_matrix.png")
