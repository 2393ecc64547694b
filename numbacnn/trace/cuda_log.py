"""The log of an observed CUDA run and what it shows (numbacnn.trace.cuda_log): ``Launch`` (every access of one
kernel launch, per-thread counts, races), ``Observation`` (all launches: totals, problems, who wrote each element).

Filled by ``numbacnn.trace.cuda_observe.observe()``; see its docstring for what counts as a race.
"""
from __future__ import annotations

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
    # one tuple per access: (array code, byte offset, block id, thread id, phase, write, atomic, value as a float)
    log: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    n_out_of_bounds: int = 0
    n_uninitialised: int = 0
    n_races: int = 0
    _written_shared: set = field(default_factory=set)

    def table(self) -> dict:
        """The log as numpy columns: code, offset, block, thread, phase (int64), write, atomic (bool), value.
        Built once per length of the log (every analysis below reads it)."""
        cached = self.__dict__.get("_table")
        if cached is not None and cached[0] == len(self.log):
            return cached[1]
        rows = np.array(self.log, dtype=np.float64).reshape(-1, 8)
        cols = rows[:, :7].astype(np.int64).T
        table = dict(code=cols[0], offset=cols[1], block=cols[2], thread=cols[3], phase=cols[4],
                     write=cols[5].astype(bool), atomic=cols[6].astype(bool), value=rows[:, 7])
        self.__dict__["_table"] = (len(self.log), table)
        return table

    def flag(self, counter: str, message: str):
        """Count one problem in ``counter`` (n_races, n_out_of_bounds, n_uninitialised); keep the first messages."""
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.problems) < MAX_LISTED:
            self.problems.append(message)

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
        info = self.arrays[key[0]]
        who = [f"block {tuple(int(v) for v in self.block_index(b))} thread "
               f"{tuple(int(v) for v in self.thread_index(th))} {'writes' if w else 'reads'} in phase {ph}"
               for b, th, ph, w in (first, second)]
        self.flag("n_races", f"race on {info.space} {info.name}{list(info.index(key[1]))} in {self.name}: "
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
        ary = _ndarray(array)
        block = np.full(ary.shape + (3,), -1, np.int64)
        thread = np.full(ary.shape + (3,), -1, np.int64)
        for launch in self.launches:
            for idx, rows, t in _writes_into(launch, ary):
                block[idx] = launch.block_index(t["block"][rows])
                thread[idx] = launch.thread_index(t["thread"][rows])
        return block, thread

    def launch_of(self, array):
        """The last launch that wrote into the device array ``array`` (None if none did)."""
        ary = _ndarray(array)
        found = [launch for launch in self.launches if any(True for _ in _writes_into(launch, ary))]
        return found[-1] if found else None


def _ndarray(array):
    return array._ary if hasattr(array, "_ary") else np.asarray(array)


def _writes_into(launch, ary):
    """Yield (index tuple into ary, rows of the launch's table, table) for its global writes that land in ary."""
    base = _address(ary)
    t = launch.table()
    for code, info in enumerate(launch.arrays):
        if info.space != GLOBAL:
            continue
        rows = np.flatnonzero((t["code"] == code) & t["write"])
        address = info.base + t["offset"][rows]
        inside = (address >= base) & (address < base + max(ary.nbytes, 1))
        if not inside.any():
            continue
        rel = address[inside] - base
        idx = []
        for stride in ary.strides:
            idx.append(rel // stride)
            rel = rel - idx[-1] * stride
        yield tuple(idx), rows[inside], t


def _address(ary) -> int:
    return ary.__array_interface__["data"][0]
