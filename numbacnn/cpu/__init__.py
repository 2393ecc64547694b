"""CPU target: Numba @njit kernels, one module per op family, the same function names as ``numbacnn.cuda``.

Each op module starts with kernel 1, the formula one output element at a time; faster kernels have higher
numbers and, when they need machinery of their own (register tiles, a fast exp), sit in sibling modules.
The public functions in ``numbacnn.conv`` / ``pool`` / ``functional`` / ``optim`` validate the arguments
and call the launchers here; nothing in this package checks user input.
"""
