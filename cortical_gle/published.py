"""The paper's published numbers that a seed sweep is compared with (docs/model.md#tasks-and-published-numbers).

Keys are a protocol name and a sweep metric (the dotted names of ``summary.csv``);
values are the paper's mean, standard deviation and number of seeds, with where
they come from.  Only numbers given with a spread and a seed count can be tested.
"""
from __future__ import annotations

from pathlib import Path

PAPER = "Ellenberger et al. 2026, Nat. Commun., MNIST-1D results"

#: protocol -> metric -> (mean, sd, n, source)
PUBLISHED = {
    "mnist1d": {
        # the paper's readout averages the output over all time steps of the sequence
        "methods.gle.final_test_acc_all_steps": (91.7, 0.8, 10, PAPER + " (GLE, readout over all steps)"),
    },
}


def published_for(protocol) -> dict:
    """The published values for a protocol name or path (``{}`` if none)."""
    return PUBLISHED.get(Path(str(protocol)).stem, {})
