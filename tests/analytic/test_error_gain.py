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

``error_tau`` (a floor on the error unit's relaxation time, ``tau_v = max(tau_r, error_tau)``) enters
only the error unit: its gain becomes ``(2 tau_m - dt) / (2 tau_v - dt)`` while the forward unit keeps
``tau_r``'s, and a floor below every ``tau_r`` changes nothing.
"""
import numpy as np
import pytest

from cortical_gle import NetworkSpec
from cortical_gle.engines import get_engine
from cortical_gle.engines.numpy_ import GLENetwork

pytestmark = pytest.mark.equations

DT, TAU_M = 0.2, 1.2
TAU_RS = [DT, 2 * DT, 0.5]          # LI (the paper's), and two look-aheads that bound the gain


def gain(tau_r):
    return (2 * TAU_M - DT) / (2 * tau_r - DT)     # 11, 3.67, 2.75


def net_1_1_1(tau_r, w_in, w_out, error_tau=None):
    spec = NetworkSpec.feedforward([1, 1, 1], tau_m=[TAU_M, 1.0], tau_r=[tau_r, 1.0], phi="linear", bias=False,
                                   error_tau=error_tau)
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


@pytest.mark.parametrize("error_tau", TAU_RS[1:])
def test_error_tau_bounds_only_the_error_units_gain(error_tau):
    """An LI unit (``tau_r = dt``) with ``error_tau``: the error unit has the gain of ``tau_v = error_tau``,
    the forward unit still the LI unit's ``1 / 11`` (its memory is untouched)."""
    steps, w_out = 200, 0.3
    flip = (-1.0) ** np.arange(steps)[:, None, None]
    e = net_1_1_1(DT, 0.0, w_out, error_tau).run(np.zeros((steps, 1, 1)), flip, record=("e",))["e"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(e[-20:]), w_out * gain(error_tau), rtol=1e-12)
    r = net_1_1_1(DT, 1.0, 0.0, error_tau).run(flip, record=("r",))["r"][:, 0, 0, 0]
    np.testing.assert_allclose(np.abs(r[-20:]), 1 / gain(DT), rtol=1e-12)


def test_error_tau_below_every_tau_r_changes_nothing():
    """``max(tau_r, error_tau) = tau_r`` everywhere: the same run, bit for bit."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 2, 1)), rng.standard_normal((60, 2, 1))
    w = dict(w_in=0.7, w_out=-1.3)
    a = net_1_1_1(2 * DT, **w).run(x, y, record=("e", "r"))
    b = net_1_1_1(2 * DT, **w, error_tau=DT).run(x, y, record=("e", "r"))
    for k in ("e", "r"):
        np.testing.assert_array_equal(a[k], b[k])


def test_error_tau_is_checked_and_refused_where_not_implemented():
    with pytest.raises(ValueError, match="error_tau is 0.1, below dt = 0.2"):
        net_1_1_1(DT, 1.0, 1.0, error_tau=0.1)
    with pytest.raises(ValueError, match="error_tau must be positive"):
        NetworkSpec.feedforward([1, 1, 1], 1.0, 1.0, error_tau=-1.0)
    spec = NetworkSpec.feedforward([1, 1, 1], 1.0, 1.0, error_tau=0.4)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    for engine in ("brian2", "nest"):          # the real engines refuse it before building anything
        with pytest.raises(ValueError, match=f"{engine} engine's error units relax with tau_r.*error_tau = 0.4"):
            get_engine(engine).build(spec, 0.2)
