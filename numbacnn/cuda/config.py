"""Launch configuration of every CUDA kernel (numbacnn.cuda.config); no numba import, so safe to import anywhere.

* ``threads_per_block``: threads in each 1-D block (a power of two, for the tree reductions); 256 by default.
* ``tile``: side of the 2-D thread blocks of the shared-memory kernels (tile x tile threads); 16 by default.
* ``simple``: True runs every op with its teaching kernel (``..._kernel1``) instead of the fastest one.

Tests shrink the blocks so that tiny inputs still span several blocks::

    from numbacnn.cuda import config
    with config.override(threads_per_block=32, tile=4):
        ...
"""
from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager

# Numba warns at every launch of fewer than 128 blocks ("Grid size N will likely result in GPU under-utilization
# due to low occupancy"). Teaching-sized inputs always launch that few; the warning says nothing about the kernels,
# so this one message is silenced (NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 is Numba's own switch for it).
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

threads_per_block = 256
tile = 16
simple = False


def _check_threads(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= 1024 or n & (n - 1):
        raise ValueError(f"threads_per_block must be a power of two from 1 to 1024, got {n!r}")
    return int(n)


def _check_tile(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= 32:
        raise ValueError(f"tile must be an int from 1 to 32 (tile * tile threads per block), got {n!r}")
    return int(n)


def set_threads_per_block(n: int) -> None:
    """Threads per 1-D block for every later launch."""
    global threads_per_block
    threads_per_block = _check_threads(n)


def set_tile(n: int) -> None:
    """Side of the 2-D blocks of the tiled kernels for every later launch."""
    global tile
    tile = _check_tile(n)


def set_simple(flag: bool) -> None:
    """True: use the simple one-thread-per-output kernels everywhere."""
    global simple
    simple = bool(flag)


@contextmanager
def override(threads_per_block: int | None = None, tile: int | None = None, simple: bool | None = None):
    """Temporarily change the launch configuration (restored on exit)."""
    g = globals()
    saved = {k: g[k] for k in ("threads_per_block", "tile", "simple")}
    try:
        if threads_per_block is not None:
            set_threads_per_block(threads_per_block)
        if tile is not None:
            set_tile(tile)
        if simple is not None:
            set_simple(simple)
        yield
    finally:
        g.update(saved)


def blocks(n: int, per_block: int | None = None) -> int:
    """Ceil-division grid size: enough blocks of ``per_block`` threads to cover ``n`` items."""
    per_block = threads_per_block if per_block is None else per_block
    return (n + per_block - 1) // per_block


def launch_1d(n: int) -> tuple[int, int]:
    """(blocks, threads) for one thread per item over ``n`` items."""
    return blocks(n), threads_per_block
