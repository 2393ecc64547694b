"""A cold start's compiling on every core (numbacnn._precompile): which kernels a job needs, compiled in parallel.

Numba compiles a kernel the first time it meets it, one after another in one process: a LeNet training step
needs about twenty kernels, some 2-4 s each, so a first run on an empty cache spends most of a minute on one core.
``precompile(job)`` instead

1. *records* which kernels ``job()`` calls and with which argument types, without compiling or running them:
   every Numba dispatcher of numbacnn's CPU modules is swapped for a recorder that notes the call and returns
   (a dry run in a forked child; the arrays it would have filled are zeros there, so the launchers take the
   same routes). A kernel that returns a value the launcher needs (cross-entropy's loss, relu kernel 2's new
   array) gives the stand-in of DRY_RUN_VALUES, or is compiled and run when it has none;
2. *compiles* the kernels not yet in Numba's on-disk cache over the cores: forked children take units of work
   (a kernel, or kernels sharing a threaded callee) from a queue, largest first, each compiling into the cache
   (``dispatcher.compile(signature)``), and this process takes units too once it is free;
3. returns; ``job()`` then runs for real and loads every kernel from the cache.

``start(job)`` does 1 and starts 2, and returns at once (train-lenet loads the data meanwhile); ``precompile(job)``
is ``start(job, helping=True).join()``.

On one core, where fork is unsafe, or with ``NUMBACNN_SPEEDUPS=0`` (numbacnn.speedups) nothing happens here and
``job()`` compiles as usual. Any failure here only means ``job()`` compiles what is missing, as it would anyway.
"""
from __future__ import annotations

import dis
import os
import re
import sys
import time

from ._fork import Forked

# Where the kernels are named (a launcher calls them through its module's globals): numbacnn's modules, names
# ending in _kernel<N>. Other dispatchers (tile helpers, inlined pieces) are compiled inside the kernels.
KERNEL_PACKAGE = "numbacnn."
KERNEL_NAME = re.compile(r"_kernel\d+$")


def _zeros_like_last(*args):
    """The dry run's stand-in for a kernel that makes its output like its last argument (relu's kernel 2)."""
    import numpy as np

    return np.zeros_like(args[-1])


# What a value-returning kernel gives its launcher in the dry run (a finite loss, no bad label row; a function:
# called with the kernel's arguments), so the dry run need not compile it first (that took a second, before the
# workers could start).
DRY_RUN_VALUES = {"cross_entropy_forward_kernel1": 0.0, "cross_entropy_forward_kernel2": (0.0, -1),
                  "relu_forward_kernel2": _zeros_like_last, "relu_backward_kernel2": _zeros_like_last}


def _bindings():
    """[(module, name, dispatcher)] for every Numba CPU kernel (KERNEL_NAME) bound to a name in a numbacnn module
    (the CPU kernel modules are imported first: the ops load them lazily)."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import cpu

    for info in pkgutil.iter_modules(cpu.__path__):
        importlib.import_module(f"{cpu.__name__}.{info.name}")
    return [(module, attr, value) for name, module in list(sys.modules.items())
            if name.startswith(KERNEL_PACKAGE) and module is not None
            for attr, value in list(vars(module).items())
            if isinstance(value, CPUDispatcher) and KERNEL_NAME.search(value.py_func.__name__)]


def _dispatchers():
    """{id: dispatcher} of the kernels of ``_bindings``."""
    return {id(d): d for _, _, d in _bindings()}


def _returns_value(fn) -> bool:
    """True when the Python function ``fn`` can return something other than None (its launcher uses it)."""
    instructions = list(dis.get_instructions(fn))
    for i, ins in enumerate(instructions):
        if ins.opname == "RETURN_CONST" and ins.argval is not None:
            return True
        if ins.opname == "RETURN_VALUE":
            before = instructions[i - 1] if i else None
            if not (before is not None and before.opname == "LOAD_CONST" and before.argval is None):
                return True
    return False


class _Recorder:
    """Stands in for a dispatcher during the dry run: notes (dispatcher, argument types) and returns None."""

    def __init__(self, dispatcher, calls):
        self.dispatcher, self.calls = dispatcher, calls
        self.value = DRY_RUN_VALUES.get(dispatcher.py_func.__name__)
        self.runs = self.value is None and _returns_value(dispatcher.py_func)

    def __call__(self, *args):
        d = self.dispatcher
        self.calls.append((d, tuple(d.typeof_pyval(a) for a in args)))
        if self.runs:
            return d(*args)
        return self.value(*args) if callable(self.value) else self.value


def record(job):
    """[(dispatcher, argument types)] that ``job()`` calls, in order, each once; run in this process (use
    ``record_forked`` to keep this process untouched). ``job()``'s own exceptions end the recording there."""
    import numpy as np

    calls = []
    swapped = _bindings()
    for module, attr, value in swapped:
        setattr(module, attr, _Recorder(value, calls))
    empty, empty_like = np.empty, np.empty_like
    np.empty, np.empty_like = np.zeros, np.zeros_like  # the outputs the skipped kernels would fill: zeros
    try:
        job()
    except Exception:  # noqa: BLE001 - a dry run on zeros may stop early; what was recorded still helps
        pass
    finally:
        np.empty, np.empty_like = empty, empty_like
        for module, attr, value in swapped:
            setattr(module, attr, value)
    seen, unique = set(), []
    for d, types in calls:
        if (id(d), types) not in seen:
            seen.add((id(d), types))
            unique.append((d, types))
    return unique


def _name(d) -> str:
    return f"{d.py_func.__module__}.{d.py_func.__qualname__}"


def _recorded_names(job):
    return [(_name(d), types) for d, types in record(job)]


def record_forked(job):
    """``record(job)`` in a forked child (its swaps and zeros never touch this process): [(name, types)]."""
    return Forked(_recorded_names, job).result()


def is_cached(dispatcher, types) -> bool:
    """True when Numba's on-disk cache holds ``dispatcher`` compiled for ``types`` (nothing is loaded)."""
    try:  # the key Dispatcher.compile(types) looks up
        cache = dispatcher._cache
        key = cache._index_key(tuple(types), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - Numba's private cache API moved: say "not cached" and compile
        return False


def _callees(dispatcher):
    """{id: dispatcher} of the Numba functions that ``dispatcher``'s code calls, directly or not."""
    from numba.core.registry import CPUDispatcher

    found, stack = {}, [dispatcher.py_func]
    while stack:
        fn = stack.pop()
        for name in fn.__code__.co_names:
            value = fn.__globals__.get(name)
            if isinstance(value, CPUDispatcher) and id(value) not in found:
                found[id(value)] = value
                stack.append(value.py_func)
    return found


def _cost(dispatchers) -> int:
    """A rough compile cost of these functions: their bytecode size, twice for a threaded (``parallel``) one."""
    return sum(len(d.py_func.__code__.co_code) * (2 if d.targetoptions.get("parallel") else 1) for d in dispatchers)


def units(tasks):
    """``tasks`` [(dispatcher, [types, ...])] grouped into units of work, largest first: [[task, ...]].

    Kernels that call a common threaded function (parallel, not inlined: e.g. linear's forward kernel, which both
    linear gradients fall back on) go in one unit, so one worker compiles it once; small shared helpers are
    compiled by each worker that needs them. The order is by a rough compile cost (``_cost``)."""
    def big(d):
        return bool(d.targetoptions.get("parallel")) and d.targetoptions.get("inline") != "always"

    groups = []  # [(tasks, {id: dispatcher} compiled by them)]
    for task in tasks:
        compiled = {id(task[0]): task[0], **_callees(task[0])}
        shared = {i for i, d in compiled.items() if big(d) and i != id(task[0])}
        merged = [g for g in groups if shared & {i for i, d in g[1].items() if big(d)}]
        for g in merged:
            groups.remove(g)
            compiled.update(g[1])
        groups.append(([task] + [t for g in merged for t in g[0]], compiled))
    return [group_tasks for group_tasks, compiled in sorted(groups, key=lambda g: -_cost(g[1].values()))]


def _compile_all(share):
    for dispatcher, signatures in share:
        for types in signatures:
            try:
                dispatcher.compile(types)
            except Exception:  # noqa: BLE001 - the real call will compile it (and raise there if it must)
                pass


def _take_units(work, queue):
    """Compile units of ``work`` until ``queue`` (the read end of a pipe of 2-byte unit numbers) is empty: each
    worker takes the next unit when it is free, so the cores stay busy until the end (a unit's cost is only a
    guess; fixed shares measured 3.4 s apart on a 21 s cold start)."""
    while True:
        number = os.read(queue, 2)
        if len(number) < 2:
            return
        _compile_all(work[int.from_bytes(number, "big")])


class Compiling:
    """The kernels that ``job()`` needs and Numba's cache lacks, compiling in forked workers from the moment this
    is made (``start``); ``join()`` has this process take its share of what is left and wait for the workers.
    ``missing``: how many kernel signatures were missing (0: a warm cache, nothing to do); ``started``: when
    (``time.perf_counter``)."""

    def __init__(self, missing=0, work=(), workers=0):
        self.missing, self._work, self._workers, self._queue = missing, list(work), [], None
        self.started = time.perf_counter()
        if not self._work:
            return
        read, write = os.pipe()  # every unit's number, largest first; the workers take them in that order
        os.write(write, b"".join(i.to_bytes(2, "big") for i in range(len(self._work))))
        os.close(write)
        self._queue = read
        self._workers = [Forked(_take_units, self._work, read) for _ in range(min(workers, len(self._work)))]

    def join(self) -> int:
        if self._queue is not None:
            _take_units(self._work, self._queue)
            for worker in self._workers:
                worker.result()
            os.close(self._queue)
            self._queue, self._workers = None, []
        return self.missing

    def cancel(self):
        """Stop the workers (a command that ends before training); what they finished stays in the cache."""
        for worker in self._workers:
            worker.kill()
        self._workers = []
        if self._queue is not None:
            os.close(self._queue)
            self._queue = None


def start(job, workers: int | None = None, helping: bool = False) -> Compiling:
    """Start compiling the kernels that ``job()`` needs and Numba's cache lacks, in ``workers`` forked processes
    (default: one per core, at most 4; one fewer when ``helping``: this process takes units too, from when it
    calls ``join``; train-lenet loads its data first). Returns a ``Compiling``; its ``missing`` is 0, with nothing
    started, on a warm cache, on one core, where fork is unsafe, or with ``NUMBACNN_SPEEDUPS=0``."""
    from .speedups import can_fork, cores

    workers = min(cores(), 4) if workers is None else workers
    if workers < 2 or not can_fork():
        return Compiling()
    by_name = {_name(d): d for d in _dispatchers().values()}
    if any(type(d._cache).__name__ == "NullCache" for d in by_name.values()):
        return Compiling()  # no on-disk cache (no writable folder): the workers' kernels could not reach this process
    missing = {}
    for name, types in record_forked(job):
        d = by_name.get(name)
        if d is not None and not is_cached(d, types):
            missing.setdefault(name, (d, []))[1].append(types)
    work = units(list(missing.values()))
    return Compiling(sum(len(sigs) for _, sigs in missing.values()), work, workers - 1 if helping else workers)


def precompile(job, workers: int | None = None) -> int:
    """Compile the kernels that ``job()`` needs and Numba's cache lacks, over ``workers`` processes (default: one
    per core, at most 4), this one included. Returns how many kernel signatures were missing (0: a warm cache,
    nothing done)."""
    return start(job, workers, helping=True).join()
