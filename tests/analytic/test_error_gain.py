"""GLE's error unit inverts its neuron's filter: at the step-alternating frequency, exactly.

At the highest frequency the Euler grid carries, a sign flip every step (z = -1), a unit with
``tau_r <= tau_m`` damps: ``u_pro = u + tau_r du`` gains ``(2 tau_r - dt) / (2 tau_m - dt)``
(``u <- (1 - dt/tau_m) u + (dt/tau_m) x`` at z = -1, then the look-ahead).  Its error unit
(``v <- (1 - dt/tau_r) v + (dt/tau_r) inst``, ``e = v + (tau_m/tau_r)(inst - v)``) has the inverse
gain ``(2 tau_m - dt) / (2 tau_r - dt)``: 11 for an LI unit (``tau_r = dt``) with ``tau_m = 6 dt``.
BPTT's adjoint passes the transposed filter, with the forward gain, so GLE weighs such error
content ``((2 tau_m - dt) / (2 tau_r - dt))^2`` times too much (121 for that LI unit; README,
"Why GLE's update leaves the gradient").  Both gains are checked on a 1-1-1 linear network
against the closed form, after the transient has decayed below 1e-12.
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork

pytestmark = pytest.mark.equations

DT, TAU_M = 0.2, 1.2
TAU_RS = [DT, 2 * DT, 0.5]          # LI (the paper's), and two look-aheads that bound the gain


def gain(tau_r):
    return (2 * TAU_M - DT) / (2 * tau_r - DT)     # 11, 3.67, 2.75


def net_1_1_1(tau_r, w_in, w_out):
    spec = NetworkSpec.feedforward([1, 1, 1], tau_m=[TAU_M, 1.0], tau_r=[tau_r, 1.0], phi="linear", bias=False)
    return GLENetwork(spec, dt=DT, weights=[np.array([[w_in]]), np.array([[w_out]])],
                      biases=[np.zeros(1), np.zeros(1)])


@pytest.mark.parametrize("tau_r", TAU_RS)
def test_forward_unit_passes_a_sign_flip_every_step_with_the_inverse_gain(tau_r):
    steps = 200                                   # transient (1 - dt/tau_m)^t = (5/6)^200 ~ 1e-16
    x = (-1.0) ** np.arange(steps)[:, None, None]
    r = net_1_1_1(tau_r, 1.0, 0.0).run(x, record=("r",))["r"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(r[-20:]), 1 / gain(tau_r), rtol=1e-12)


@pytest.mark.parametrize("tau_r", TAU_RS)
def test_error_unit_amplifies_a_sign_flip_every_step(tau_r):
    """No input, so the output error is the target itself (MSE, beta 1) and reaches the hidden unit
    one step later as ``w_out * target``; the LE output unit's error is instantaneous."""
    steps, w_out = 200, 0.3                       # transient (1 - dt/tau_r)^t: 0 for LI, 0.5^t, 0.6^t
    target = (-1.0) ** np.arange(steps)[:, None, None]
    e = net_1_1_1(tau_r, 0.0, w_out).run(np.zeros((steps, 1, 1)), target, record=("e",))["e"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(e[-20:]), w_out * gain(tau_r), rtol=1e-12)
