"""CPU target: Numba @njit kernels, one module per op family, the same function names as ``numbacnn.cuda``.

Each op module starts with kernel 1, the formula one output element at a time; faster kernels have higher
numbers and, when they need machinery of their own (register tiles, a fast exp), sit in sibling modules.
The public functions in ``numbacnn.conv`` / ``pool`` / ``functional`` / ``optim`` validate the arguments
and call the launchers here; nothing in this package checks user input.
"""

# The kernels' ``parallel=`` option: only their explicit ``prange`` loops run on several threads. Numba's other
# automatic parallelisations (array expressions, np.zeros, reductions...) stay off: each would become a threaded
# loop of its own (a gufunc, compiled separately: seconds of a first run's compiling) for small set-up work.
PARALLEL = {"prange": True, "comprehension": False, "numpy": False, "reduction": False, "setitem": False,
            "stencil": False, "fusion": False, "inplace_binop": False}
