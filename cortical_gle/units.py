"""Units at the public boundary.

The public API and protocol files take :mod:`quantities` (or strings such as
``"10 ms"``); engines work in plain floats.  Conversion happens once, here, and
a wrong dimension fails early with the parameter's name.
"""
from __future__ import annotations

import re

import numpy as np
import quantities as pq

_QTY = re.compile(r"^\s*([-+0-9.eE]+(?:\s*,\s*[-+0-9.eE]+)*)\s*([A-Za-z/*^0-9 .]*)\s*$")


class UnitError(ValueError):
    """A value has the wrong physical dimension or cannot be parsed."""


def parse_quantity(value, name: str = "value"):
    """Turn ``"10 ms"``, ``"1.2"`` or a number into a number or a quantity.

    Strings without a unit and plain numbers stay dimensionless floats.
    """
    if isinstance(value, pq.Quantity):
        return value
    if isinstance(value, str):
        m = _QTY.match(value)
        if not m:
            raise UnitError(f"{name}: cannot read {value!r} as a number with a unit (e.g. '10 ms')")
        number, unit = m.group(1), m.group(2).strip()
        try:
            mag = float(number)
        except ValueError:
            raise UnitError(f"{name}: cannot read {value!r} as a number with a unit") from None
        if not unit:
            return mag
        try:
            return mag * pq.Quantity(1.0, unit)
        except (LookupError, ValueError, SyntaxError):
            raise UnitError(f"{name}: unknown unit {unit!r} in {value!r}") from None
    return value


def to_magnitude(value, unit, name: str):
    """Magnitude of ``value`` expressed in ``unit`` (float or ndarray).

    A plain number is taken to be in ``unit`` already; a quantity is rescaled;
    a quantity of another dimension raises :class:`UnitError` naming ``name``.
    """
    value = parse_quantity(value, name)
    if isinstance(value, pq.Quantity):
        unit = pq.Quantity(1.0, unit) if isinstance(unit, str) else unit
        try:
            mag = value.rescale(unit.units).magnitude
        except ValueError:
            raise UnitError(
                f"{name} must have the dimension of {unit.dimensionality.string}, "
                f"got {value.dimensionality.string}"
            ) from None
        return float(mag) if np.ndim(mag) == 0 else np.asarray(mag, dtype=float)
    arr = np.asarray(value, dtype=float) if not np.isscalar(value) else float(value)
    return arr
