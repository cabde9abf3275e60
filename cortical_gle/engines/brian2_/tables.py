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
    """``name(k) = values[k]`` on the numpy, Cython and C++ targets (``values`` replaced before each run)."""

    def __init__(self, name: str):
        self.name = name
        self.values = np.zeros(1)
        self.generation = 0     # counts reallocations: compiled code holds the array, so same-size sets copy in place

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
        # cpp_standalone: the values become a static array of the program, which standalone.py replaces per run
        cpp = f"static inline double {name}(const int k) {{ return _namespace{name}_values[k]; }}"
        self.implementations.add_dynamic_implementation(
            "cpp", lambda owner: cpp, namespace=lambda owner: {f"{name}_values": self.values}, name=name)

    def _numpy_impl(self):
        values = self.values

        def table(k):
            return values[k]

        table._arg_units = [1]
        table._return_unit = 1
        return table

    def set(self, values) -> None:
        """New contents, ``(steps, columns)`` flattened row by row (read as ``table(step*columns + column)``).

        Contents of the same size are copied into the existing array (code objects kept
        from an earlier run read them there); another size allocates a new array and
        counts a new :attr:`generation`.
        """
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == self.values.size:
            self.values[...] = values
        else:
            self.values = values.copy()
            self.generation += 1
