"""Per-run input and target tables that Brian2 code reads by step.

Brian2's ``TimedArray`` writes the table's shape into the generated code, so every
run of a new length would compile again (seconds per code object with Cython).  A
:class:`StepTable` is a function ``table(k)`` of a flat integer index whose values
are handed to the compiled code at every run, like any other array: one
compilation serves every run length and batch size.
"""
from __future__ import annotations

import numpy as np
from brian2 import Function


class StepTable(Function):
    """``name(k) = values[k]`` on the numpy and Cython targets (``values`` replaced before each run)."""

    def __init__(self, name: str):
        self.name = name
        self.values = np.zeros(1)

        def pyfunc(k):
            return self.values[np.asarray(k, dtype=np.int64)]

        Function.__init__(self, pyfunc, arg_units=[1], return_unit=1, arg_types=["integer"],
                          return_type="float", stateless=True)
        self.implementations.add_dynamic_implementation("numpy", lambda owner: self._numpy_impl())
        code = f"""
        cdef double {name}(const long k):
            global _namespace{name}_values
            return _namespace{name}_values[k]
        """
        self.implementations.add_dynamic_implementation(
            "cython", lambda owner: code, namespace=lambda owner: {f"{name}_values": self.values}, name=name)

    def _numpy_impl(self):
        values = self.values

        def table(k):
            return values[k]

        table._arg_units = [1]
        table._return_unit = 1
        return table

    def set(self, values) -> None:
        """New contents, ``(steps, columns)`` flattened row by row (read as ``table(step*columns + column)``)."""
        self.values = np.ascontiguousarray(values, dtype=np.float64).ravel()
