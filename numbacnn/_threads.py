"""Threads by measurement (numbacnn._threads): each training step runs on all of Numba's threads or on one,
whichever has been faster per example in its last few steps.

On a quiet 2-core machine two threads train LeNet about 1.8x faster than one. With one busy process beside it
they are about 10 % slower than one thread: every parallel kernel waits for its slowest thread, and one thread
shares its core. So ``numbacnn.train`` asks ``choice_for(model).pick(most)`` before a step and reports the step's
time after (``.record``): after a first step that is not counted, the next steps try both (FIRST each), then
the faster one runs, and the other is tried again at steps 16 and 32 and then one step in ``PROBE_EVERY``.
Each choice is judged by its fastest step of the last KEEP it ran (a slow outlier, such as the first step's
kernel loading or another process's burst, does not count); so when load comes, the running choice's recent
steps show it at once, and when it goes, one probe shows it. Each model keeps its own record:
a small model's steps say nothing about a big one's. ``most`` is Numba's thread count (``numba.set_num_threads``,
or NUMBA_NUM_THREADS), never exceeded. The bits do not depend on the thread count
(numbacnn.cpu.conv.GRAD_WEIGHT_JOBS), so the choice changes the speed only. ``NUMBACNN_SPEEDUPS=0`` switches it
off: every step on ``most`` threads (numbacnn.speedups).
"""
from __future__ import annotations

import weakref
from collections import deque

PROBE_EVERY = 64  # one step in this many runs on the choice that is not the best (about 1 % of the time)
EARLY_PROBES = (16, 32)  # and at these steps, so that a choice made on the first few steps is checked soon
KEEP = 5          # steps remembered per choice (the fastest of them decides)
FIRST = 3         # steps of each choice tried before choosing
SKIP = 1          # a model's first steps run on `most` threads unrecorded: they touch fresh memory and mislead


class ThreadChoice:
    """Seconds per example of the last KEEP steps at each thread count; ``pick`` returns the next step's count."""

    def __init__(self):
        self.times = {}
        self.steps = 0

    def pick(self, most: int) -> int:
        """Threads for the next step: ``most`` or 1."""
        if most < 2:
            return most
        self.steps += 1
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
