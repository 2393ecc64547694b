"""Writing a model trace to disk (numbacnn.trace.writer): the folder, its manifest and its chunks, in order.

``numbacnn.trace.Tracer`` records; a ``TraceWriter`` puts what it records on disk, on a writer thread (at most one
step waits, so memory stays bounded) or inline. Each chunk is written to a temporary file and renamed; the
manifest is rewritten the same way after each completed step (layout: ``numbacnn.trace.model``).
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from .format import LAYER_KINDS, MANIFEST, PROBE_KINDS, TraceError, save_npz, step_file, write_json


def check_folder(path, overwrite):
    """True when ``path`` holds a trace that may be replaced (``overwrite``), False when it is free; changes nothing.

    ValueError for a file, a folder holding anything but a numbacnn trace, or a trace without ``overwrite``."""
    if not os.path.exists(path):
        return False
    if not os.path.isdir(path):
        raise ValueError(f"path {path!r} exists and is not a folder: choose another trace path")
    entries = set(os.listdir(path))
    if not entries:
        return False
    ours = MANIFEST in entries and entries <= {MANIFEST, "steps", "scalars"} | \
        {e for e in entries if e.startswith(".tmp-")}
    if not ours:
        raise ValueError(f"path {path!r} is a non-empty folder that is not a numbacnn trace: choose another trace path")
    if not overwrite:
        raise ValueError(f"path {path!r} already holds a trace (pass overwrite=True to replace it)")
    return True


def prepare_folder(path, overwrite):
    """Create ``path``/steps and ``path``/scalars; empty a previous trace there (only with ``overwrite``).

    ValueError for a file, or a folder holding anything but a numbacnn trace (``check_folder``)."""
    if check_folder(path, overwrite):
        for e in os.listdir(path):
            full = os.path.join(path, e)
            shutil.rmtree(full) if os.path.isdir(full) else os.unlink(full)
    os.makedirs(os.path.join(path, "steps"), exist_ok=True)
    os.makedirs(os.path.join(path, "scalars"), exist_ok=True)


class TraceWriter:
    """The disk side of a ``Tracer``: writes ``manifest`` (a dict it keeps up to date) and the chunks of ``path``.

    ``submit(writer.write_step, ...)`` queues a write (``background=True``: file writes, which release the GIL,
    overlap the next training steps) or runs it inline. A failed write is raised as TraceError on the training
    thread, at the next ``submit``, ``flush`` or ``close``.
    """

    def __init__(self, path, manifest, *, background=True):
        self.path, self.manifest = path, manifest
        self.error = None
        self._scalar_chunk = 0
        self.write_manifest()
        self._queue = self._thread = None
        if background:
            import queue
            import threading

            self._queue = queue.Queue(maxsize=1)  # at most one step waits: memory stays bounded
            self._thread = threading.Thread(target=self._run, name="numbacnn-trace-writer", daemon=True)
            self._thread.start()

    def _failed(self):
        return TraceError(f"writing the trace {self.path!r} failed: {self.error}")

    def submit(self, fn, *args):
        """Run ``fn(*args)`` after every earlier write: on the writer thread, or now."""
        if self.error is not None:
            raise self._failed() from self.error
        if self._queue is None:
            try:
                fn(*args)
            except Exception as exc:
                self.error = exc
                raise self._failed() from exc
        else:
            self._queue.put((fn, args))  # blocks while the previous step is still being written

    def _run(self):
        while True:
            fn, args = self._queue.get()
            try:
                if fn is None:
                    return
                if self.error is None:
                    fn(*args)
            except BaseException as exc:  # reported on the training thread at the next submit / close
                self.error = exc
            finally:
                self._queue.task_done()

    def flush(self):
        """Wait until everything submitted so far is on disk."""
        if self._queue is not None:
            self._queue.join()
        if self.error is not None:
            raise self._failed() from self.error

    def close(self):
        """Stop the writer thread after the writes already submitted (``flush`` then reports a failed one)."""
        if self._queue is not None:
            self._queue.put((None, ()))
            self._thread.join()

    # --- the writes (run in submission order)
    def write_manifest(self):
        write_json(os.path.join(self.path, MANIFEST), self.manifest, compact=True)

    def write_step(self, step, arrays, scalar_rows):
        """One recorded step's arrays as ``steps/step-<step>.npz``; the layers' shapes join the manifest."""
        rel = step_file(step)
        nbytes = save_npz(os.path.join(self.path, rel), arrays)
        m = self.manifest
        if any(k.startswith(("layer/", "probe/")) for k in arrays):
            for entry in m["layers"]:
                for kind in LAYER_KINDS:
                    a = arrays.get(f"layer/{entry['index']}/{kind}")
                    if a is None and kind in PROBE_KINDS:  # samples=0 with a probe: shapes from the probe
                        a = arrays.get(f"probe/{entry['index']}/{kind}")
                    if a is not None and kind not in entry:
                        entry[kind] = {"shape": list(a.shape[1:]), "dtype": str(a.dtype)}
        m["steps"].append(int(step))
        m["step_bytes"].append(int(nbytes))
        self.write_scalars(scalar_rows, False)
        self.write_manifest()

    def write_scalars(self, rows, write_manifest):
        """Logged (step, loss, acc) rows as the next ``scalars/scalars-<k>.npz`` chunk."""
        if not rows:
            return
        rel = os.path.join("scalars", f"scalars-{self._scalar_chunk:08d}.npz")
        nbytes = save_npz(os.path.join(self.path, rel), {
            "step": np.array([r[0] for r in rows], np.int64), "loss": np.array([r[1] for r in rows], np.float64),
            "acc": np.array([r[2] for r in rows], np.float64)})
        self._scalar_chunk += 1
        self.manifest["scalars"].append(rel)
        self.manifest["scalar_bytes"].append(int(nbytes))
        self.manifest["scalar_steps"] += len(rows)
        if write_manifest:
            self.write_manifest()

    def finish(self, rows, error):
        """The last scalars, then the manifest marked complete (or with ``error``, a string)."""
        self.write_scalars(rows, False)
        self.manifest["complete"] = error is None
        if error is not None:
            self.manifest["error"] = error
        self.write_manifest()
