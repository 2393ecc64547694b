"""Threads by measurement (numbacnn._threads): each training step runs on all of Numba's threads or on one,
whichever has been faster per example in its last few steps.

On a quiet 2-core machine two threads train LeNet about 1.8x faster than one. With one busy process beside it
they are about 10 % slower than one thread: every parallel kernel waits for its slowest thread, and one thread
shares its core. So ``numbacnn.train`` asks ``choice_for(model).pick(most)`` before a step and reports the step's
time after (``.record``): after a first step that is not counted, the next steps try both (FIRST each), then
the faster one runs, and the other is tried again at steps 16 and 32 and then one step in ``PROBE_EVERY``.
Each choice is judged by its fastest step of the last KEEP it ran (a slow outlier, such as the first step's
kernel loading or another process's burst, does not count); so when load comes, the running choice's recent
steps show it at once, and when it goes, one probe shows it. A probe on more threads while another process holds
a core costs 110-130 ms instead of 10 (a waiting thread whose core is taken), so no step tries more threads while
the other processes used BUSY of the most - 1 other cores or more in the last WINDOW seconds (``/proc/stat``
against this process's own CPU time: half a core on 2 cores, where it was measured; 3.5 cores for 8 threads).
Where there is no /proc, or below that, the probes decide. Each model keeps its own record:
a small model's steps say nothing about a big one's. ``most`` is Numba's thread count (``numba.set_num_threads``,
or NUMBA_NUM_THREADS), never exceeded. The bits do not depend on the thread count
(numbacnn.cpu.conv.GRAD_WEIGHT_JOBS), so the choice changes the speed only. ``NUMBACNN_SPEEDUPS=0`` switches it
off: every step on ``most`` threads (numbacnn.speedups).
"""
from __future__ import annotations

import os
import time
import weakref
from collections import deque

PROBE_EVERY = 64  # one step in this many runs on the choice that is not the best (about 1 % of the time)
EARLY_PROBES = (16, 32)  # and at these steps, so that a choice made on the first few steps is checked soon
KEEP = 5          # steps remembered per choice (the fastest of them decides)
FIRST = 3         # steps of each choice tried before choosing
SKIP = 1          # a model's first steps run on `most` threads unrecorded: they touch fresh memory and mislead
WINDOW = 0.2      # seconds over which the other processes' CPU use is measured (/proc/stat counts in 10 ms ticks)
BUSY = 0.5        # share of the other most - 1 cores the other processes use, from which one thread runs untried


def cpu_seconds():
    """(CPU seconds used by every process, by this one) so far, or None where /proc/stat is missing (not Linux)."""
    try:
        with open("/proc/stat", "rb") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user .. steal, less idle and iowait
        return busy / os.sysconf("SC_CLK_TCK"), time.process_time()
    except (OSError, ValueError, IndexError):
        return None


class ThreadChoice:
    """Seconds per example of the last KEEP steps at each thread count; ``pick`` returns the next step's count."""

    def __init__(self):
        self.times = {}
        self.steps = 0
        self.others = 0.0  # cores the other processes used in the last WINDOW seconds
        self._mark = None  # (wall clock, cpu_seconds()) where that window starts

    def pick(self, most: int) -> int:
        """Threads for the next step: ``most`` or 1."""
        if most < 2:
            return most
        if self._mark is None:  # the first step: start the window now, so that a busy machine is seen after it
            self.watch_others()  # (and not after two trial steps on `most` threads, 170 ms each under load)
        self.steps += 1
        if self.others >= BUSY * (most - 1):  # others hold the cores more threads would use: a step on them
            return 1                           # waits for a thread whose core is taken (100+ ms on 2 cores)
        if self.steps <= SKIP:
            return most
        options = (most, 1)
        for threads in options:
            if len(self.times.get(threads, ())) < FIRST:
                return threads
        best, other = sorted(options, key=lambda t: min(self.times[t]))
        return other if self.steps % PROBE_EVERY == 0 or self.steps in EARLY_PROBES else best

    def record(self, threads: int, seconds: float, examples: int):
        """A step of ``examples`` examples took ``seconds`` on ``threads`` threads (the first SKIP are ignored)."""
        if examples > 0 and self.steps > SKIP:
            self.times.setdefault(threads, deque(maxlen=KEEP)).append(seconds / examples)
        self.watch_others()

    def watch_others(self, now=None, cpu=None):
        """Update ``others`` once WINDOW seconds have passed: the CPU time all processes used less this one's, per
        second of wall clock (``now``, ``cpu``: a clock reading and cpu_seconds(), for tests)."""
        now = time.perf_counter() if now is None else now
        if self._mark is not None and now - self._mark[0] < WINDOW:
            return  # (/proc/stat is read once a window, not once a step)
        cpu = cpu_seconds() if cpu is None else cpu
        if cpu is None:
            return
        if self._mark is not None:
            (then, (all_then, own_then)), (all_now, own_now) = self._mark, cpu
            self.others = max(0.0, (all_now - all_then) - (own_now - own_then)) / (now - then)
        self._mark = (now, cpu)


_CHOICES = weakref.WeakKeyDictionary()  # one ThreadChoice per model: steps of different models differ in cost
_SHARED = ThreadChoice()                # for a model that cannot be weakly referenced


def choice_for(model) -> ThreadChoice:
    """The ThreadChoice of ``model`` (made on its first step, forgotten with the model)."""
    try:
        choice = _CHOICES.get(model)
        if choice is None:
            choice = _CHOICES[model] = ThreadChoice()
        return choice
    except TypeError:
        return _SHARED
