"""Watch the real CUDA kernels while they run in Numba's simulator (numbacnn.trace.cuda_observe).

``observe()`` records, for every thread of every kernel launched inside it, each element it reads and writes,
in global or shared memory, and in which barrier phase (phase k = after its k-th ``cuda.syncthreads()``). The
kernels are the ones the ops launch, unmodified: the simulator runs every CUDA thread as a Python thread, and the
observer listens where the simulator hands out array elements (its in-kernel array and shared-memory objects)::

    with observe() as run:                      # NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported
        y = nc.conv2d(x, w, device="cudasim", kernel=2)
    run.counts()        # totals: global reads / writes, shared reads / writes
    run.problems()      # races, reads of shared memory no thread wrote, out-of-bounds accesses
    run.writers(y)      # (block, thread): blockIdx / threadIdx (x, y, z) of the thread that wrote each element

A race is two threads touching one element in the same barrier phase (in any phase when they are in different
blocks: a barrier orders one block only), at least one of them writing, not both atomically. An out-of-bounds
index (negative ones too: the GPU would not wrap them) is recorded, then the read returns 0 and the write is
dropped, so one run finds every such access.
"""
from __future__ import annotations

import contextlib
import linecache
import os
import re
import sys
import threading

import numpy as np

from .cuda_log import GLOBAL, READ, SHARED, WRITE, ArrayInfo, Launch, Observation, _address

# ----------------------------------------------------------------------------------------------
# The hooks into the simulator


def _simulator():
    """The simulator's modules (kernel, kernelapi, devicearray); a clear error when the simulator is off."""
    from numba import config

    if not getattr(config, "ENABLE_CUDASIM", False):
        raise RuntimeError("observing CUDA kernels needs Numba's CUDA simulator: set NUMBA_ENABLE_CUDASIM=1 before "
                           "numba is imported (the CLI's --device cudasim does it)")
    from numba.cuda.simulator import kernel, kernelapi
    from numba.cuda.simulator.cudadrv import devicearray

    return kernel, kernelapi, devicearray


class _State:
    """The observation in progress: the current launch and how to reach it from a simulated thread."""

    def __init__(self, observation):
        self.observation = observation
        self.launch = None
        self.lock = threading.Lock()

    def code_of(self, ary, name, space):
        """The launch's code for the array that holds ``ary``'s memory (registered on first sight), and ``ary``'s
        byte offset in it. An argument that is exactly ``ary`` wins (a launcher may pass a view of one array as
        another, unused, argument); else the largest one that contains it (a view made inside the kernel)."""
        launch = self.launch
        start = _address(ary)
        best = None
        for code, info in enumerate(launch.arrays):
            extent = max(int(np.prod(info.shape)), 1) * info.itemsize
            if info.space != space or not info.base <= start < info.base + extent or \
                    (space == SHARED and info.name != name):
                continue
            if info.base == start and info.shape == tuple(ary.shape) and info.strides == tuple(ary.strides):
                return code, 0
            if best is None or extent > best[1]:
                best = (code, extent)
        if best is not None:
            return best[0], start - launch.arrays[best[0]].base
        with self.lock:
            launch.arrays.append(ArrayInfo(name or f"array{len(launch.arrays)}", space, start, tuple(ary.shape),
                                           ary.itemsize, tuple(ary.strides)))
            return len(launch.arrays) - 1, 0

    def access(self, ary, code, delta, idx, write, value=None):
        """Log one element access (idx a tuple of ints into ``ary``; ``value`` written); False when out of bounds."""
        launch = self.launch
        me = threading.current_thread()
        info = launch.arrays[code]
        if len(idx) != ary.ndim or any(not 0 <= i < n for i, n in zip(idx, ary.shape)):
            with self.lock:
                launch.flag("n_out_of_bounds",
                            f"out-of-bounds {'write' if write else 'read'} of {info.space} {info.name}{list(idx)} "
                            f"(shape {tuple(ary.shape)}) in {launch.name} by block {tuple(me.blockIdx)} thread "
                            f"{tuple(me.threadIdx)}")
            return False
        offset = delta + sum(i * s for i, s in zip(idx, ary.strides))
        bx, by = launch.grid[0], launch.grid[1]
        block_id = me.blockIdx.x + bx * (me.blockIdx.y + by * me.blockIdx.z)
        if info.space == SHARED:
            key = (code, block_id, offset)
            if write:
                launch._written_shared.add(key)
            elif key not in launch._written_shared:
                with self.lock:
                    launch.flag("n_uninitialised",
                                f"read of shared {info.name}{list(info.index(offset))} that no thread wrote, in "
                                f"{launch.name} by block {tuple(me.blockIdx)} thread {tuple(me.threadIdx)} (phase "
                                f"{getattr(me, '_nc_phase', 0)})")
        launch.log.append((code, offset, block_id, me.thread_id, getattr(me, "_nc_phase", 0), int(write),
                           int(getattr(me, "_nc_atomic", False)), _number(value if write else ary[idx])))
        return True


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _element(idx, ndim):
    """idx as a tuple of ints when it names one element of an ndim-array, else None (a slice: a view)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    if len(idx) == ndim and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in idx):
        return tuple(int(i) for i in idx)
    return None


class _Shared:
    """A ``cuda.shared.array`` (or a view of one) whose element reads and writes are logged."""

    def __init__(self, state, ary, name, code=None, delta=0):
        self._state, self._ary, self._name = state, ary, name
        if code is None:
            code, delta = state.code_of(ary, name, SHARED)
        self._code, self._delta = code, delta

    shape = property(lambda self: self._ary.shape)
    dtype = property(lambda self: self._ary.dtype)
    size = property(lambda self: self._ary.size)
    ndim = property(lambda self: self._ary.ndim)

    def __len__(self):
        return len(self._ary)

    def __getitem__(self, idx):
        element = _element(idx, self._ary.ndim)
        if element is None:
            view = self._ary[idx]
            return _Shared(self._state, view, self._name, self._code,
                           self._delta + _address(view) - _address(self._ary))
        if not self._state.access(self._ary, self._code, self._delta, element, READ):
            return self._ary.dtype.type(0)
        return self._ary[element]

    def __setitem__(self, idx, value):
        element = _element(idx, self._ary.ndim)
        if element is None:
            raise TypeError("the observer logs shared-memory writes element by element")
        if self._state.access(self._ary, self._code, self._delta, element, WRITE, value):
            self._ary[element] = value


def _shared_name(frame):
    """The variable a ``cuda.shared.array`` call is assigned to, from its source line ("shared" if unclear)."""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    m = re.match(r"\s*(\w+)\s*=", line)
    return m.group(1) if m else f"shared@{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


@contextlib.contextmanager
def observe():
    """Record every simulated kernel launched inside the block; yields the ``Observation`` (filled as they run)."""
    kernel, kernelapi, devicearray = _simulator()
    observation = Observation()
    state = _State(observation)
    Within = devicearray.FakeWithinKernelCUDAArray
    saved = dict(call=kernel.FakeCUDAKernel.__call__, get=Within.__getitem__, set=Within.__setitem__,
                 shared=kernelapi.FakeCUDAShared.array, sync=kernel.BlockThread.syncthreads,
                 atomic={name: getattr(kernelapi.FakeCUDAAtomic, name) for name in dir(kernelapi.FakeCUDAAtomic)
                         if not name.startswith("_")})

    def call(self, *args):
        if self._device or kernel._kernel_context is not None or state.launch is not None:
            return saved["call"](self, *args)
        from numba.cuda.errors import normalize_kernel_dimensions

        grid, block = normalize_kernel_dimensions(self.grid_dim, self.block_dim)
        launch = Launch(self.fn.__name__, tuple(grid), tuple(block))
        import inspect

        names = list(inspect.signature(self.fn).parameters)
        for name, arg in zip(names, args):
            ary = getattr(arg, "_ary", None)
            if isinstance(ary, np.ndarray) and ary.ndim > 0:
                launch.arrays.append(ArrayInfo(name, GLOBAL, _address(ary), tuple(ary.shape), ary.itemsize,
                                               tuple(ary.strides)))
        state.launch = launch
        try:
            return saved["call"](self, *args)
        finally:
            state.launch = None
            launch._written_shared = set()
            launch.find_races()
            observation.launches.append(launch)

    def where(self):
        meta = self.__dict__.get("_nc_meta")
        if meta is None or meta[0] is not state.launch:
            ary = self._item._ary
            code, delta = state.code_of(ary, None, GLOBAL)
            meta = (state.launch, code, delta)
            self.__dict__["_nc_meta"] = meta
        return meta

    def getitem(self, idx):
        if state.launch is None or not hasattr(threading.current_thread(), "blockIdx"):
            return saved["get"](self, idx)
        ary = self._item._ary
        element = _element(idx, ary.ndim)
        if element is None:
            return saved["get"](self, idx)
        _, code, delta = where(self)
        if not state.access(ary, code, delta, element, READ):
            return ary.dtype.type(0)
        return saved["get"](self, element)

    def setitem(self, idx, value):
        if state.launch is None or not hasattr(threading.current_thread(), "blockIdx"):
            return saved["set"](self, idx, value)
        ary = self._item._ary
        element = _element(idx, ary.ndim)
        if element is None:
            return saved["set"](self, idx, value)
        _, code, delta = where(self)
        if state.access(ary, code, delta, element, WRITE, value):
            saved["set"](self, element, value)

    def shared(self, shape, dtype, alignment=None):
        if state.launch is None:
            return saved["shared"](self, shape, dtype, alignment)
        frame = sys._getframe(1)
        name = _shared_name(frame)
        if shape == 0:
            ary = saved["shared"](self, shape, dtype, alignment)
        else:  # the simulator's rule: one allocation per source line (its own lookup would see this line)
            from numba.core import types
            from numba.np import numpy_support

            if isinstance(dtype, types.Type):
                dtype = numpy_support.as_dtype(dtype)
            key = (frame.f_code.co_filename, frame.f_lineno)
            ary = self._allocations.get(key)
            if ary is None:
                ary = self._allocations[key] = np.empty(shape, dtype)
        return _Shared(state, ary, name)

    def sync(self):
        saved["sync"](self)
        self._nc_phase = getattr(self, "_nc_phase", 0) + 1

    def atomic(fn):
        def wrapped(self, array, *args):
            me = threading.current_thread()
            me._nc_atomic = True
            try:
                return fn(self, array, *args)
            finally:
                me._nc_atomic = False
        return wrapped

    kernel.FakeCUDAKernel.__call__ = call
    Within.__getitem__, Within.__setitem__ = getitem, setitem
    kernelapi.FakeCUDAShared.array = shared
    kernel.BlockThread.syncthreads = sync
    for name, fn in saved["atomic"].items():
        setattr(kernelapi.FakeCUDAAtomic, name, atomic(fn))
    try:
        yield observation
    finally:
        kernel.FakeCUDAKernel.__call__ = saved["call"]
        Within.__getitem__, Within.__setitem__ = saved["get"], saved["set"]
        kernelapi.FakeCUDAShared.array = saved["shared"]
        kernel.BlockThread.syncthreads = saved["sync"]
        for name, fn in saved["atomic"].items():
            setattr(kernelapi.FakeCUDAAtomic, name, fn)
