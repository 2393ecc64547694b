"""Start-up and rendering speed-ups in one place (numbacnn.speedups), each with its plain path one flag away.

``NUMBACNN_SPEEDUPS=0`` in the environment turns every one of them off; the numbers, the pictures (pixel for
pixel) and the exit codes are the same either way, only slower::

    NUMBACNN_SPEEDUPS=0 numbacnn animate conv --kernel edge

    speed-up (on by default)                        machinery              switched off (plain path)
    run_beside: the kernels (Numba's import, the    numbacnn._fork         the kernels run here, then
      trace) run in a forked child while this                              matplotlib loads
      process loads matplotlib (CLI animations)
    render_workers: frames rendered by forked       numbacnn.viz._anim     every frame rendered in this
      workers into shared memory                                           process
    figure_canvas: an Agg canvas that caches        numbacnn.viz._agg      matplotlib's FigureCanvasAgg
      glyph bitmaps (matplotlib's private text
      path, re-done with a cache)
    end_process: flush, then os._exit, skipping     here                   sys.exit (the interpreter
      interpreter tear-down (about 0.5 s)                                  tears down as usual)
    keep_freed_memory: glibc's malloc keeps freed   here (mallopt)         glibc's defaults: big arrays
      arrays for reuse (numbacnn.train)                                    mmapped and returned each time
    precompile: a cold cache's kernels compile on   numbacnn._precompile   compiled one after another
      every core at once (train-lenet)                                     in this process
    thread choice: each training step on Numba's    numbacnn._threads      every step on all of Numba's
      threads or on one, the faster lately                                  threads
    layer pairs: Sequential runs Conv2d + ReLU or   numbacnn.nn.containers every layer's own forward
      Sigmoid forward, ReLU + MaxPool2d and Sigmoid                         and backward
      + AvgPool2d backward in one pass each

Forking is also skipped where it is missing or unsafe (Windows, macOS) and once Numba is loaded in this
process (nothing to gain; a forked child may not restart Numba's threads). The switch is read at each call.
"""
from __future__ import annotations

import os
import sys

SWITCH = "NUMBACNN_SPEEDUPS"


def enabled() -> bool:
    """False when ``$NUMBACNN_SPEEDUPS`` is 0 (or false, no, off): then every function here takes the plain path."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def can_fork() -> bool:
    """Speed-ups on, and a platform where fork is safe for these processes (not Windows, not macOS)."""
    from ._fork import fork_available

    return enabled() and fork_available()


class _Here:
    """The plain path of ``run_beside``: ``fn(*args, **kwargs)`` runs here when ``result()`` asks for it."""

    def __init__(self, fn, *args, **kwargs):
        self._call = (fn, args, kwargs)

    def result(self):
        fn, args, kwargs = self._call
        return fn(*args, **kwargs)


def run_beside(fn, *args, **kwargs):
    """A job whose ``result()`` is ``fn(*args, **kwargs)`` (its exception raised there).

    Speed-up: ``fn`` starts now in a forked child (numbacnn._fork.Forked), so this process can do something
    else meanwhile (the CLI loads matplotlib while the kernels run). Plain: ``fn`` runs inside ``result()``.
    """
    if can_fork() and "numba" not in sys.modules:
        from ._fork import Forked

        return Forked(fn, *args, **kwargs)
    return _Here(fn, *args, **kwargs)


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def render_workers(workers, n_frames: int) -> int:
    """How many processes render ``n_frames`` frames (numbacnn.viz Animation.frames' ``workers``).

    ``workers``: a positive int, or None for one per CPU core (at most 4). Never more than one per 8 frames.
    Plain (or where fork is unsafe): 1, every frame rendered in this process.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    if not can_fork():
        return 1
    if workers is None:
        workers = min(cores(), 4)
    return max(1, min(workers, n_frames // 8))


def figure_canvas():
    """The Agg canvas class for numbacnn.viz's figures.

    Speed-up: numbacnn.viz._agg's canvas, which caches string layouts and glyph bitmaps (the same pixels;
    matplotlib's stock canvas where its private text path differs). Plain: matplotlib's FigureCanvasAgg.
    """
    if enabled():
        from .viz._agg import CANVAS

        return CANVAS
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg


def end_process(code: int):
    """End the ``numbacnn`` command with exit status ``code``; never returns.

    Speed-up: the command's files are written and closed; what is left is Python tearing down Numba's thread
    pool, LLVM and matplotlib, about half a second. So the streams are flushed and the process ends with
    ``os._exit``, unless a non-daemon thread is still running (then the normal exit waits for it).
    Plain: ``sys.exit(code)``.
    """
    import threading

    if not enabled() or any(t.is_alive() and not t.daemon for t in threading.enumerate()
                            if t is not threading.main_thread()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (numbacnn ... | head): nothing left to say
            pass
    os._exit(code)


_MALLOC_TUNED = []


def keep_freed_memory():
    """Let glibc's malloc keep the memory of freed arrays for the next ones (Linux with glibc; elsewhere nothing).

    A training step allocates its activations and gradients afresh (several MB each at batch 256) and frees them.
    By default glibc serves such blocks with mmap, or trims the heap top, and returns the memory to the system
    at once, so every step faults the same pages in again: about 1,000 page faults per LeNet step, 15-20 % of
    its CPU time on one thread. Speed-up (numbacnn.train calls this once): mmap only blocks over 64 MiB and trim
    only past 256 MiB of free heap, so a training process keeps up to that much memory for reuse. It is
    process-wide (the setting PyTorch users get from GLIBC_TUNABLES or jemalloc). Plain: glibc's defaults.
    """
    if _MALLOC_TUNED or not enabled() or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED.append(True)
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 64 << 20)
    mallopt(M_TRIM_THRESHOLD, 256 << 20)
