"""CPU target: Numba @njit kernels, one module per op family, the same function names as ``numbacnn.cuda``.

Each op module starts with kernel 1, the formula one output element at a time; faster kernels have higher
numbers and, when they need machinery of their own (register tiles, a fast exp), sit in sibling modules.
The public functions in ``numbacnn.conv`` / ``pool`` / ``functional`` / ``optim`` validate the arguments
and call the launchers here; nothing in this package checks user input.
"""

# PARALLEL: the ``parallel=`` options of the threaded CPU kernels (``@njit(parallel=PARALLEL)``): threads for the
# ``prange`` loops and Numba's fast loops for slice assignments (``setitem``; without them the conv weight
# gradient ran 35 % slower), nothing else. The other options turn every np.zeros / np.empty / array expression into
# a parallel loop of its own, and fuse and reduce them: none of LeNet's kernels ran faster with them, and each
# compiled 25 % slower (conv forward 2: 5.1 s against 3.8 s; a first run compiles sixteen kernels; measured in
# benchmarks/README.md, "Second session on #15"). A ParallelOptions, not a dict: Numba pops the keys of a dict as
# it reads them, so one dict shared by several kernels would leave the later ones with every option on.
from numba.core.cpu import ParallelOptions  # noqa: E402 - after the package docstring and the comment above

PARALLEL = ParallelOptions({"prange": True, "setitem": True, "numpy": False, "reduction": False,
                            "inplace_binop": False, "comprehension": False, "stencil": False, "fusion": False})
