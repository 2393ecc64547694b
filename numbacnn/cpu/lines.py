"""relu's kernel 2 (numbacnn.cpu.lines): kernel 1's formula on whole cache lines, one run of lines per thread.

A large elementwise op is bound by memory, not arithmetic: relu on LeNet's conv1 output (256x6x28x28 float32) reads
4.8 MB and writes 4.8 MB, and PyTorch and kernel 1 both move them at what the cores' caches allow. What is left
is how the bytes cross cache lines (64 bytes). A 64-byte vector load or store that straddles two lines costs two,
and a large NumPy array starts 16 bytes into a line (glibc's chunk header), so most of kernel 1's vectors straddle.
Kernel 2

1. makes its output with ``new_in_line(x)`` (and returns it): a new flat array at x's offset within a page
   (4096 bytes), so within a line too. Within a page, because an output that starts 64-448 bytes after x,
   counted modulo 4096, ran 2-5 % slower on 2 cores (most likely loads of x waiting on stores to the output
   whose addresses agree in their low 12 bits, as in Intel's "4K aliasing"); that is 7 of a page's 64 line
   offsets, and where the allocator puts the output varies between processes (benchmarks/README.md, "Fifth
   session on #15");
2. runs the formula on the elements before x's first line boundary (fewer than one line);
3. splits the rest into RUNS runs of whole lines (the last run also takes the elements after the last whole line)
   and the threads share the runs (Numba gives each thread a block of consecutive runs).

So every vector of x and of the output starts a line. On 2 cores it runs 4-11 % faster than kernel 1
(benchmarks/README.md, "Fourth session on #15"). The bits are kernel 1's: the same formula on each element.
Shapes: any; the kernels take x (and gy) as they are and return the output in x's shape, so unlike kernel 1
(flat views, one compile per dtype) each compiles once per dtype and number of dimensions (0.7 s each here;
in LeNet at batch 256 only the conv outputs, 4-D, are large enough for kernel 2).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL

LINE = 64  # bytes in a cache line
PAGE = 4096  # bytes in a page: the output starts at x's offset within one
RUNS = 64  # runs per call: a whole number of runs per thread for 1, 2, 4 ... 64 threads, near even for others


@njit(cache=True)
def new_in_line(x):
    """A new flat array of x's size and dtype that starts at x's offset within a page, so within a cache line."""
    per_page = PAGE // x.itemsize
    buf = np.empty(x.size + per_page, x.dtype)
    shift = ((x.ctypes.data - buf.ctypes.data) % PAGE) // x.itemsize
    return buf[shift:shift + x.size]


@njit(inline="always")
def _runs(x):
    """(head, per): x[:head] lies before x's first line boundary; then each of the RUNS runs takes ``per``
    elements (whole lines) and the last one what is left."""
    per_line = LINE // x.itemsize
    head = min(x.size, (-x.ctypes.data % LINE) // x.itemsize)
    lines = (x.size - head) // per_line
    return head, (lines + RUNS - 1) // RUNS * per_line


@njit(inline="always")
def _run(r, head, per, size):
    """(lo, hi) of run r: ``per`` elements from head + r * per, the last run to the end (empty past it)."""
    lo = head + r * per
    return lo, (size if r == RUNS - 1 else min(size, lo + per))


@njit(inline="always")
def _relu(x, y):
    """Kernel 1's formula: y = 0 where x < 0, else x (NaN and -0.0 stay)."""
    zero = y.dtype.type(0)
    for i in range(x.size):
        y[i] = zero if x[i] < 0 else x[i]


@njit(inline="always")
def _relu_grad(gy, x, gx):
    """Kernel 1's formula: gx = 0 where x <= 0, else gy."""
    zero = gx.dtype.type(0)
    for i in range(x.size):
        gx[i] = zero if x[i] <= 0 else gy[i]


@njit(parallel=PARALLEL, cache=True)
def relu_forward_kernel2(x):
    """relu(x) into a new array of x's shape at x's offset within a page (``new_in_line``), returned; x any shape.

    It makes its output and gives it x's shape itself (kernel 1 fills one it is given): from Python one call and
    no reshapes, which cost about 1 µs right after a large kernel (benchmarks/README.md, "Seventh session")."""
    xs = x.ravel()  # a flat view of a C-contiguous x (a copy of another)
    y = new_in_line(xs)
    head, per = _runs(xs)
    _relu(xs[:head], y[:head])
    for r in prange(RUNS):
        lo, hi = _run(r, head, per, xs.size)
        if lo < hi:
            _relu(xs[lo:hi], y[lo:hi])
    return y.reshape(x.shape)


@njit(parallel=PARALLEL, cache=True)
def relu_backward_kernel2(gy, x):
    """relu_backward(gy, x) into a new array of x's shape at x's offset within a page, returned; gy of x's shape."""
    gys, xs = gy.ravel(), x.ravel()
    gx = new_in_line(xs)
    head, per = _runs(xs)
    _relu_grad(gys[:head], xs[:head], gx[:head])
    for r in prange(RUNS):
        lo, hi = _run(r, head, per, xs.size)
        if lo < hi:
            _relu_grad(gys[lo:hi], xs[lo:hi], gx[lo:hi])
    return gx.reshape(x.shape)
