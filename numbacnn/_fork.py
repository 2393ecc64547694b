"""Forked jobs (numbacnn._fork): run a function in a forked child while this process does something else.

The CLI's animations need two slow, independent things: Numba (import, target set-up, cached kernels: the
trace) and matplotlib (import, figure). ``Forked(fn, ...)`` starts ``fn`` in a child; ``.result()`` returns
its value or raises its exception here (both travel pickled through a pipe). ``fn`` simply runs in this
process where fork is missing or unsafe (Windows, macOS), or when the child dies without an answer.
Reached through numbacnn.speedups.run_beside, which also decides when forking is worth it (and has the
switch that turns it off).
"""
from __future__ import annotations

import os
import pickle
import sys


def fork_available() -> bool:
    """This platform forks safely for numbacnn's processes (not Windows, not macOS)."""
    return hasattr(os, "fork") and sys.platform != "darwin"


class Forked:
    """``fn(*args, **kwargs)`` running in a forked child; ``result()`` waits for it."""

    def __init__(self, fn, *args, **kwargs):
        self._call = (fn, args, kwargs)
        self._pid = None
        if not fork_available():
            return
        sys.stdout.flush()
        sys.stderr.flush()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller
            status = 1
            try:
                os.close(read)
                try:
                    answer = ("value", fn(*args, **kwargs))
                except Exception as exc:  # the parent raises it
                    answer = ("error", exc)
                try:
                    data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an unpicklable value or exception: say what happened
                    data = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self):
        """The function's value; its exception is raised here."""
        if self._pid is None:
            fn, args, kwargs = self._call
            return fn(*args, **kwargs)
        pid, self._pid = self._pid, None
        try:
            with os.fdopen(self._read, "rb") as pipe:
                data = pipe.read()
        finally:
            os.waitpid(pid, 0)
        try:
            kind, value = pickle.loads(data)
        except Exception:  # the child died (killed, out of memory): do the work here
            fn, args, kwargs = self._call
            return fn(*args, **kwargs)
        if kind == "error":
            raise value
        return value

    def kill(self):
        """Stop the child now, if it still runs (its work is lost; ``result()`` then runs ``fn`` here)."""
        if self._pid is None:
            return
        import signal

        pid, self._pid = self._pid, None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(self._read)

    def __del__(self):
        if getattr(self, "_pid", None):  # never collected: don't leave a zombie
            try:
                os.close(self._read)
                os.waitpid(self._pid, 0)
            except OSError:
                pass
