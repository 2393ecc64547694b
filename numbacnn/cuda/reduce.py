"""Device helpers shared by the CUDA kernels (numbacnn.cuda.reduce): the block-wide tree sum."""
from __future__ import annotations

from numba import cuda


@cuda.jit(device=True)
def block_sum(partial, value):
    """Tree-sum ``value`` over the block's threads (blockDim.x a power of two); every thread gets the total.

    ``partial`` is a shared array with one slot per thread. Each round halves the live partial sums:
    thread ``me`` adds in the slot ``step`` places above it, then everyone waits for the round to finish.
    """
    me = cuda.threadIdx.x
    partial[me] = value
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if me < step:
            partial[me] += partial[me + step]
        cuda.syncthreads()
        step //= 2
    return partial[0]
