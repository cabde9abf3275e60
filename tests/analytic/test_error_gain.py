"""GLE's error unit inverts its neuron's filter: at the step-alternating frequency, exactly.

A leaky-integrator unit (``tau_r = dt``) low-passes its input: at the highest frequency the
Euler grid carries, a sign flip every step (z = -1), ``u`` gains
``(dt/tau_m) / (2 - dt/tau_m) = 1 / (2 tau_m/dt - 1)``.  Its error unit applies the inverse:
with ``tau_r = dt``, ``v`` takes the instantaneous error one step late and
``e = inst + (tau_m/dt - 1) (inst - v)``, a gain of ``2 tau_m/dt - 1`` at z = -1.  (BPTT's
adjoint passes the transposed filter, whose gain there is the forward one, 1/(2 tau_m/dt - 1):
GLE's error weights such content (2 tau_m/dt - 1)^2 = 121 times too much at tau_m = 6 dt; README,
"Why GLE's update leaves the gradient".)  Both checked on a 1-1-1 linear network against the
closed forms, after the transient has decayed below 1e-12.
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork

pytestmark = pytest.mark.equations

DT, TAU_M = 0.2, 1.2
GAIN = 2 * TAU_M / DT - 1      # 11


def li_net(w_in, w_out):
    spec = NetworkSpec.feedforward([1, 1, 1], tau_m=[TAU_M, 1.0], tau_r=[DT, 1.0], phi="linear", bias=False)
    return GLENetwork(spec, dt=DT, weights=[np.array([[w_in]]), np.array([[w_out]])],
                      biases=[np.zeros(1), np.zeros(1)])


def test_leaky_integrator_passes_a_sign_flip_every_step_with_gain_1_over_11():
    steps = 200                                   # transient (1 - dt/tau_m)^t = (5/6)^200 ~ 1e-16
    x = (-1.0) ** np.arange(steps)[:, None, None]
    r = li_net(1.0, 0.0).run(x, record=("r",))["r"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(r[-20:]), 1 / GAIN, rtol=1e-12)
    assert np.all(r[-20:] * x[-20:, 0, 0] < 0) or np.all(r[-20:] * x[-20:, 0, 0] > 0)


def test_error_unit_amplifies_a_sign_flip_every_step_by_11():
    """No input, so the output error is the target itself (MSE, beta 1) and reaches the hidden unit
    one step later as ``w_out * target``; the LE output unit's error is instantaneous."""
    steps, w_out = 40, 0.3
    target = (-1.0) ** np.arange(steps)[:, None, None]
    e = li_net(0.0, w_out).run(np.zeros((steps, 1, 1)), target, record=("e",))["e"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(e[5:]), w_out * GAIN, rtol=1e-12)
