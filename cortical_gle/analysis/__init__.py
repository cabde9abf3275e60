"""Analyses of simulated (and recorded) signals: Neo objects in, quantities out."""
from .phase import sinusoid_fit, phase_and_gain

__all__ = ["sinusoid_fit", "phase_and_gain"]
