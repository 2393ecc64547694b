"""Deliberately broken CUDA kernels (tests/cudasim/broken_kernels.py), each beside its correct twin, for the
observer's tests: the checker must flag every broken one for the right reason and pass every correct one."""
from numba import cuda

T = 8  # threads per block of these kernels


@cuda.jit
def neighbour_sum(x, out):
    """Correct: out[i] = x[i] + x[i + 1 within the block's tile], staged in shared memory, with its barrier."""
    tile = cuda.shared.array(T, dtype=x.dtype)
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * T + t
    tile[t] = x[i] if i < x.shape[0] else 0.0
    cuda.syncthreads()
    if i < out.shape[0]:
        out[i] = tile[t] + tile[(t + 1) % T]


@cuda.jit
def neighbour_sum_without_sync(x, out):
    """Broken: the same without cuda.syncthreads(): thread t reads the slot thread t + 1 writes, unordered."""
    tile = cuda.shared.array(T, dtype=x.dtype)
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * T + t
    tile[t] = x[i] if i < x.shape[0] else 0.0
    if i < out.shape[0]:
        out[i] = tile[t] + tile[(t + 1) % T]


@cuda.jit
def copy(x, out):
    """Correct: out[i] = x[i], one thread per element, guarded (the grid is rounded up to whole blocks)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = x[i]


@cuda.jit
def copy_without_guard(x, out):
    """Broken: no bounds guard, so the last block's extra threads read and write past the end."""
    i = cuda.grid(1)
    out[i] = x[i]


@cuda.jit
def pair_sum_two_writers(x, out):
    """Broken: out[i // 2] = x[i]: two threads write one output element."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i // 2] = x[i]


@cuda.jit
def pair_sum_atomic(x, out):
    """Correct: out[i // 2] += x[i] with an atomic add: two threads update one element, atomically."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        cuda.atomic.add(out, i // 2, x[i])


@cuda.jit
def read_other_blocks_output(x, out):
    """Broken: each thread writes out[i], then reads the element the next block writes (no grid-wide barrier)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = x[i]
        x[i] = out[(i + T) % out.shape[0]]
