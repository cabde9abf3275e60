"""Bad network descriptions fail early with a message naming the problem."""
import numpy as np
import pytest
import quantities as pq

from cortical_gle import LayerSpec, NetworkSpec
from cortical_gle.engines.numpy_ import GLENetwork
from cortical_gle.units import UnitError


def test_tau_below_dt_is_rejected_naming_layer_and_neuron():
    spec = NetworkSpec.feedforward([1, 3, 1], tau_m=[[1.0, 0.05, 1.0], 1.0], tau_r=0.5)
    with pytest.raises(ValueError, match=r"tau_m of layer 0 neuron 1 is 0.05, below dt = 0.1"):
        GLENetwork(spec, dt=0.1)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_tau(bad):
    with pytest.raises(ValueError, match="tau_r must be"):
        LayerSpec(2, 1.0, bad)


def test_tau_with_wrong_dimension_names_the_parameter():
    with pytest.raises(UnitError, match="tau_m must have the dimension of"):
        LayerSpec(2, 10 * pq.Hz, 1 * pq.ms)


def test_tau_quantity_is_converted_to_time_unit():
    layer = LayerSpec(1, 0.01 * pq.s, 2 * pq.ms)
    assert layer.tau_m[0] == pytest.approx(10.0) and layer.tau_r[0] == pytest.approx(2.0)


def test_per_neuron_tau_shape_mismatch():
    with pytest.raises(ValueError, match=r"one value per neuron \(3\)"):
        LayerSpec(3, [1.0, 2.0], 1.0)


def test_unknown_phi_and_loss():
    with pytest.raises(ValueError, match="unknown phi 'tanhh'.*tanh"):
        LayerSpec(2, 1.0, 1.0, phi="tanhh")
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        NetworkSpec.feedforward([1, 1], 1.0, 1.0, loss="l1")


def test_spec_roundtrips_through_dict():
    spec = NetworkSpec.feedforward([2, 3, 1], tau_m=[[1.0, 2.0, 3.0], 1.5], tau_r=0.5, gamma=0.3, loss="mse")
    again = NetworkSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
