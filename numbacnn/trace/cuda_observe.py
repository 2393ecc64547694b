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
from dataclasses import dataclass, field

import numpy as np

READ, WRITE = 0, 1
GLOBAL, SHARED = "global", "shared"
MAX_LISTED = 20  # problems kept with their details (all are counted)


@dataclass
class ArrayInfo:
    """One array a launch touched: a kernel argument (global) or a ``cuda.shared.array`` (shared)."""

    name: str
    space: str
    base: int  # address of element 0
    shape: tuple
    itemsize: int
    strides: tuple

    def index(self, offset: int) -> tuple:
        """The element index of byte ``offset`` from the base (C order arrays and their views)."""
        out = []
        for s in self.strides:
            out.append(offset // s if s else 0)
            offset -= out[-1] * s
        return tuple(out)


@dataclass
class Launch:
    """One kernel launch: its name, grid and block (x, y, z) and every access, one row each (numpy arrays)."""

    name: str
    grid: tuple
    block: tuple
    arrays: list = field(default_factory=list)
    log: list = field(default_factory=list)  # (array code, byte offset, block id, thread id, phase, write, atomic)
    problems: list = field(default_factory=list)
    n_out_of_bounds: int = 0
    n_uninitialised: int = 0
    n_races: int = 0
    _written_shared: set = field(default_factory=set)

    def table(self) -> dict:
        """The log as numpy columns: code, offset, block, thread, phase, write, atomic (int64 / bool)."""
        if not self.log:
            empty = np.zeros(0, np.int64)
            return dict(code=empty, offset=empty, block=empty, thread=empty, phase=empty,
                        write=empty.astype(bool), atomic=empty.astype(bool))
        cols = np.array(self.log, dtype=np.int64).T
        return dict(code=cols[0], offset=cols[1], block=cols[2], thread=cols[3], phase=cols[4],
                    write=cols[5].astype(bool), atomic=cols[6].astype(bool))

    def block_index(self, block_id):
        """blockIdx (x, y, z) of linear block id(s) (x fastest)."""
        gx, gy, _ = self.grid
        b = np.asarray(block_id)
        return np.stack([b % gx, (b // gx) % gy, b // (gx * gy)], axis=-1)

    def thread_index(self, thread_id):
        """threadIdx (x, y, z) of linear thread id(s) within the block (x fastest)."""
        bx, by, _ = self.block
        t = np.asarray(thread_id)
        return np.stack([t % bx, (t // bx) % by, t // (bx * by)], axis=-1)

    def per_thread(self) -> dict:
        """Per launched thread (block id * threads per block + thread id): global/shared reads/writes (int64)."""
        t = self.table()
        n = int(np.prod(self.grid)) * int(np.prod(self.block))
        key = t["block"] * int(np.prod(self.block)) + t["thread"]
        shared = np.array([a.space == SHARED for a in self.arrays], bool)[t["code"]] if len(t["code"]) else \
            np.zeros(0, bool)
        out = {}
        for space, is_shared in ((GLOBAL, False), (SHARED, True)):
            for kind, is_write in (("reads", False), ("writes", True)):
                sel = (shared == is_shared) & (t["write"] == is_write)
                out[f"{space} {kind}"] = np.bincount(key[sel], minlength=n)
        return out

    def find_races(self):
        """Count and list races (see the module docstring) in this launch's log."""
        t = self.table()
        if not len(t["code"]):
            return
        shared = np.array([a.space == SHARED for a in self.arrays], bool)[t["code"]]
        written = set(zip(t["code"][t["write"]].tolist(), t["offset"][t["write"]].tolist()))
        groups = {}  # only elements someone wrote can race
        for k, key in enumerate(zip(t["code"].tolist(), t["offset"].tolist())):
            if key in written:
                groups.setdefault(key, []).append(
                    (int(t["block"][k]), int(t["thread"][k]), int(t["phase"][k]), bool(t["write"][k]),
                     bool(t["atomic"][k])))
        for key, accesses in groups.items():
            pair = _conflict(accesses, across_blocks=not shared[t["code"] == key[0]][0])
            if pair:
                self._race(key, *pair)

    def _race(self, key, first, second):
        self.n_races += 1
        if len(self.problems) < MAX_LISTED:
            info = self.arrays[key[0]]
            who = [f"block {tuple(int(v) for v in self.block_index(b))} thread "
                   f"{tuple(int(v) for v in self.thread_index(th))} {'writes' if w else 'reads'} in phase {ph}"
                   for b, th, ph, w in (first, second)]
            self.problems.append(f"race on {info.space} {info.name}{list(info.index(key[1]))} in {self.name}: "
                                 f"{who[0]}, {who[1]}")


def _conflict(accesses, across_blocks):
    """Two accesses of one element that race, or None: different threads, at least one write, not both atomic,
    in the same block and barrier phase, or (``across_blocks``, global memory) in different blocks."""
    distinct = {(b, th) for b, th, _, _, _ in accesses}
    if len(distinct) < 2:
        return None
    for i, (b, th, ph, w, at) in enumerate(accesses):
        if not w:
            continue
        for b2, th2, ph2, w2, at2 in accesses:
            if (b2, th2) == (b, th) or (at and at2):
                continue
            if (b2 == b and ph2 == ph) or (b2 != b and across_blocks):
                return (b, th, ph, w), (b2, th2, ph2, w2)
    return None


class Observation:
    """What ``observe()`` saw: ``launches`` in order; counts, problems and writer maps over all of them."""

    def __init__(self):
        self.launches: list[Launch] = []

    def counts(self) -> dict:
        """Totals over every launch: global reads / writes, shared reads / writes, and the problem counts."""
        out = dict.fromkeys(("global reads", "global writes", "shared reads", "shared writes"), 0)
        for launch in self.launches:
            for k, v in launch.per_thread().items():
                out[k] += int(v.sum())
        out["uninitialised shared reads"] = sum(la.n_uninitialised for la in self.launches)
        out["races"] = sum(la.n_races for la in self.launches)
        out["out-of-bounds"] = sum(la.n_out_of_bounds for la in self.launches)
        return out

    def problems(self) -> list[str]:
        """One line per race, uninitialised shared read or out-of-bounds access found (the first few of each)."""
        return [p for launch in self.launches for p in launch.problems]

    def writers(self, array):
        """(block, thread) int64 arrays of shape (*array.shape, 3): blockIdx / threadIdx of the thread that wrote
        each element of the device array ``array`` (last launch that wrote it), -1 where none did."""
        ary = array._ary if hasattr(array, "_ary") else np.asarray(array)
        base = ary.__array_interface__["data"][0]
        block = np.full(ary.shape + (3,), -1, np.int64)
        thread = np.full(ary.shape + (3,), -1, np.int64)
        strides = ary.strides
        for launch in self.launches:
            t = launch.table()
            for code, info in enumerate(launch.arrays):
                if info.space != GLOBAL:
                    continue
                sel = (t["code"] == code) & t["write"]
                if not sel.any():
                    continue
                address = info.base + t["offset"][sel]
                inside = (address >= base) & (address < base + max(ary.nbytes, 1))
                if not inside.any():
                    continue
                rel = address[inside] - base
                idx = []
                for s in strides:
                    idx.append(rel // s)
                    rel = rel - idx[-1] * s
                idx = tuple(idx)
                block[idx] = launch.block_index(t["block"][sel][inside])
                thread[idx] = launch.thread_index(t["thread"][sel][inside])
        return block, thread


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


def _address(ary) -> int:
    return ary.__array_interface__["data"][0]


class _State:
    """The observation in progress: the current launch and how to reach it from a simulated thread."""

    def __init__(self, observation):
        self.observation = observation
        self.launch = None
        self.lock = threading.Lock()

    def code_of(self, ary, name, space):
        """The launch's code for the array that holds ``ary``'s memory (registered on first sight)."""
        launch = self.launch
        start = _address(ary)
        for code, info in enumerate(launch.arrays):
            if info.space == space and info.base <= start < info.base + max(int(np.prod(info.shape)), 1) * \
                    info.itemsize and (space == GLOBAL or info.name == name):
                return code, start - info.base
        with self.lock:
            launch.arrays.append(ArrayInfo(name or f"array{len(launch.arrays)}", space, start, tuple(ary.shape),
                                           ary.itemsize, tuple(ary.strides)))
            return len(launch.arrays) - 1, 0

    def access(self, ary, code, delta, idx, write):
        """Log one element access (idx a tuple of ints into ``ary``); False when it is out of bounds."""
        launch = self.launch
        me = threading.current_thread()
        info = launch.arrays[code]
        if len(idx) != ary.ndim or any(not 0 <= i < n for i, n in zip(idx, ary.shape)):
            with self.lock:
                launch.n_out_of_bounds += 1
                if len(launch.problems) < MAX_LISTED:
                    launch.problems.append(
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
                    launch.n_uninitialised += 1
                    if len(launch.problems) < MAX_LISTED:
                        launch.problems.append(
                            f"read of shared {info.name}{list(info.index(offset))} that no thread wrote, in "
                            f"{launch.name} by block {tuple(me.blockIdx)} thread {tuple(me.threadIdx)} (phase "
                            f"{getattr(me, '_nc_phase', 0)})")
        launch.log.append((code, offset, block_id, me.thread_id, getattr(me, "_nc_phase", 0), int(write),
                           int(getattr(me, "_nc_atomic", False))))
        return True


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
        if self._state.access(self._ary, self._code, self._delta, element, WRITE):
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
        if state.access(ary, code, delta, element, WRITE):
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
