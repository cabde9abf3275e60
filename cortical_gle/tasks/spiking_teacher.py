"""A LagLine-like teacher task for the spiking Brian2 network (issue #10 section 4).

The teacher is the numpy engine's rate network (:func:`cortical_gle.tasks.teacher_student.build_teacher`,
output in rate units); the student is :class:`~cortical_gle.engines.brian2_.spiking.SpikingBrian2Network`
of the same structure, which learns its weights online from the same Ornstein-Uhlenbeck input
(:class:`~cortical_gle.tasks.teacher_student.Stream`).  Times are in ms: the paper's LagLine in
units of 10 ms (teacher ``tau_m`` = 10, 20 ms, ``tau_r`` = 1 ms, ``dt`` = 0.1 ms), so that cells
fire at biological rates (``r_max`` = 200 Hz) and a population of ``K`` cells per unit carries it.
"""
from __future__ import annotations

import numpy as np

from .teacher_student import Config, Stream, _spec, build_teacher

#: the paper's LagLine (protocols/lagline.yaml) with time in units of 10 ms; batch 1 (one weight per synapse)
LAGLINE_MS = {
    "task": "teacher-student", "dt": 0.1,
    "network": {"sizes": [1, 1, 1], "phi": "softplus", "output_phi": "softplus", "bias": False, "tau_r": 1.0,
                "gamma": 1.0, "beta": 1.0},
    "teacher": {"tau_m": [10.0, 20.0], "weights": [[[1.0]], [[2.0]]]},
    "student": {"weight_init": "uniform01", "tau_m_init": "teacher", "learn_tau": False},
    "input": {"kind": "ou", "n": 1, "tau": 10.0, "sigma": 1.0},
    "timing": {"t_init": 100.0, "t_train": 4000.0, "batch": 1},
    "learning": {"optimizer": "sgd", "lr": 2e-3},
    "methods": ["gle"],
}


def lagline_config(**timing) -> Config:
    """:data:`LAGLINE_MS` as a teacher-student :class:`Config` (``timing`` overrides ``t_init``, ``t_train``)."""
    d = {**LAGLINE_MS, "timing": {**LAGLINE_MS["timing"], **timing}}
    return Config.model_validate(d)


def train_spiking_student(cfg: Config, seed: int, window: float = 100.0, **net_options) -> dict:
    """Settle for ``t_init``, then learn for ``t_train`` (ms); the loss as a moving average over ``window`` ms.

    Parameters
    ----------
    cfg : Config
        A teacher-student configuration with ``timing.batch = 1``.
    seed : int
        Seeds the input stream, the student's initial weights and its spikes.
    window : float
        Length (ms) of the loss average: it smooths the spiking noise of the output.
    net_options
        :class:`~cortical_gle.engines.brian2_.spiking.SpikingBrian2Network` options
        (``r_max``, ``cells_per_unit``, ``tau_s``, ``target``, ...).

    Returns
    -------
    dict
        ``loss_t`` (ms, window ends), ``loss_curve`` (window means), ``initial`` (the first
        window), ``final`` (mean of the last tenth of the windows), ``ratio`` (initial / final),
        ``weights``, ``teacher_weights``, ``tau_m``, ``net`` (the trained network).
    """
    from ..engines.brian2_.spiking import build_spiking

    dt, tm = cfg.dt, cfg.timing
    if tm.batch != 1:
        raise ValueError(f"the spiking student learns on batch 1, got timing.batch = {tm.batch}")
    n_init, n_train = int(round(tm.t_init / dt)), int(round(tm.t_train / dt))
    stream = Stream(cfg, seed, n_init + n_train)
    teacher = build_teacher(cfg)
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0, 1, w.shape) for w in teacher.weights]
    if cfg.student.tau_m_init == "teacher":
        tau_m = [t.copy() for t in teacher.tau_m]
    else:
        tau_m = [rng.uniform(*cfg.student.tau_m_init, n) for n in cfg.network.sizes[1:]]
    net = build_spiking(_spec(cfg, tau_m), dt, seed=seed, weights=weights, **net_options)
    net.configure_learning(cfg.learning.optimizer, lr=cfg.learning.lr, learn_tau=cfg.student.learn_tau,
                           tau_optimizer=cfg.learning.optimizer, lr_tau=cfg.learning.lr,
                           tau_min=cfg.learning.tau_min or 10 * dt)
    x, y, _ = stream.get(0, n_init)
    net.run(x, y, record=())
    x, y, _ = stream.get(n_init, n_train)
    loss = net.run(x, y, learn=True, reset=False, record=("loss",))["loss"]
    every = int(round(window / dt))
    curve = loss[: len(loss) // every * every].reshape(-1, every).mean(axis=1)
    final = float(np.mean(curve[-max(1, len(curve) // 10):]))   # as teacher_student's final_loss: the last tenth
    return {"loss_t": ((np.arange(len(curve)) + 1) * window).tolist(), "loss_curve": curve.tolist(),
            "initial": float(curve[0]), "final": final, "ratio": float(curve[0] / final),
            "weights": [w.tolist() for w in net.weights], "teacher_weights": [w.tolist() for w in teacher.weights],
            "tau_m": [t.tolist() for t in net.tau_m], "net": net}
