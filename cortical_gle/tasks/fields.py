"""Pydantic field types with units: strings like ``"10 ms"`` become floats in a canonical unit."""
from __future__ import annotations

from typing import Annotated, Union

import quantities as pq
from pydantic import BeforeValidator, Field

from ..units import to_magnitude


def _in(unit, what):
    def convert(v):
        if isinstance(v, bool) or v is None or isinstance(v, (list, tuple, dict)):
            raise ValueError(f"expected a {what} such as '1 {unit.dimensionality.string}'")
        return float(to_magnitude(v, unit, what))
    convert.unit = unit   # lets tests find every field with units
    return convert


#: time in ms (plain numbers are ms)
Time = Annotated[float, BeforeValidator(_in(pq.ms, "time")), Field(gt=0, allow_inf_nan=False)]
#: frequency in Hz (plain numbers are Hz)
Frequency = Annotated[float, BeforeValidator(_in(pq.Hz, "frequency")), Field(gt=0, allow_inf_nan=False)]
#: a time that may be zero (an offset or a delay), in ms
NonNegativeTime = Annotated[float, BeforeValidator(_in(pq.ms, "time")), Field(ge=0, allow_inf_nan=False)]
#: a time per layer: one value for all layers, or a list with one value (or one list per neuron) per layer
TimePerLayer = Union[Time, list[Union[Time, list[Time]]]]
