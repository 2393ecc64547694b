"""Writing a model trace to disk (numbacnn.trace.writer): the folder, its manifest and its chunks, in order.

``numbacnn.trace.Tracer`` records; a ``TraceWriter`` puts what it records on disk, on a writer thread (at most one
step waits, so memory stays bounded) or inline. Each chunk is written to a temporary file and renamed; the
manifest is rewritten the same way after each completed step (layout: ``numbacnn.trace.model``).
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from .._io import is_temp_name
from .format import LAYER_KINDS, MANIFEST, PROBE_KINDS, TraceError, load_npz, save_npz, step_file, write_json


def _debris_only(folder) -> bool:
    """True when ``folder`` holds nothing but temporary files left by a killed writer (``numbacnn._io``)."""
    return all(is_temp_name(e) for e in os.listdir(folder))


def check_folder(path, overwrite, resume=False) -> str:
    """What a Tracer opening ``path`` will do, changing nothing: "new" (nothing there, or only what a run killed
    before its first write left), "replace" (a trace, with ``overwrite``) or "continue" (a trace, with ``resume``).

    Temporary files of a killed run are ignored. ValueError for a file, a folder holding anything but a numbacnn
    trace, or a trace without ``overwrite`` or ``resume``."""
    if not os.path.exists(path):
        return "new"
    if not os.path.isdir(path):
        raise ValueError(f"path {path!r} exists and is not a folder: choose another trace path")
    entries = {e for e in os.listdir(path) if not is_temp_name(e)}
    if entries <= {"steps", "scalars"} and all(os.path.isdir(os.path.join(path, e)) and
                                               _debris_only(os.path.join(path, e)) for e in entries):
        return "new"
    if MANIFEST not in entries or not entries <= {MANIFEST, "steps", "scalars"} or \
            not all(os.path.isdir(os.path.join(path, e)) for e in entries - {MANIFEST}):
        raise ValueError(f"path {path!r} is a non-empty folder that is not a numbacnn trace: choose another trace path")
    if overwrite:
        return "replace"
    if resume:
        return "continue"
    raise ValueError(f"path {path!r} already holds a trace (pass overwrite=True to replace it, or resume=True to "
                     f"continue it)")


def _remove_debris(path):
    """Delete the temporary files a killed writer left in the trace folder and its steps/ and scalars/."""
    for folder in (path, os.path.join(path, "steps"), os.path.join(path, "scalars")):
        if os.path.isdir(folder):
            for e in os.listdir(folder):
                if is_temp_name(e) and os.path.isfile(os.path.join(folder, e)):
                    os.unlink(os.path.join(folder, e))


def prepare_folder(path, overwrite, resume=False) -> str:
    """Create ``path``/steps and ``path``/scalars: empty a previous trace there (only with ``overwrite``), or keep
    it to continue (``resume``; ``continue_manifest`` then trims it); debris of a killed run is removed.
    Returns ``check_folder``'s answer; ValueError as it raises."""
    mode = check_folder(path, overwrite, resume)
    if mode == "replace":
        for e in os.listdir(path):
            full = os.path.join(path, e)
            shutil.rmtree(full) if os.path.isdir(full) else os.unlink(full)
    _remove_debris(path)
    os.makedirs(os.path.join(path, "steps"), exist_ok=True)
    os.makedirs(os.path.join(path, "scalars"), exist_ok=True)
    return mode


def continue_manifest(path, start_step, check=None):
    """(manifest, files to delete once it is written, next scalars chunk number) for continuing the trace at
    ``path`` from step ``start_step``: steps and logged rows at or after ``start_step`` (recorded after the
    checkpoint being resumed) are dropped; rows kept from a chunk that also held dropped ones go to a new chunk.
    ``check(manifest)`` runs before anything is changed (it raises when the trace is not the run's).
    TraceError when the trace is damaged (``Trace.problems``) and cannot be continued."""
    from .manifest import check_scalar_arrays
    from .reader import Trace

    t = Trace(path)
    m = t.manifest
    if check is not None:
        check(m)
    keep = sum(1 for s in m["steps"] if s < start_step)
    m["steps"], m["step_bytes"] = m["steps"][:keep], m["step_bytes"][:keep]
    damaged = t.problems()
    if damaged:
        raise TraceError(f"the trace {path!r} is damaged and cannot be continued ({damaged[0]}): give another "
                         f"--trace path, or pass --overwrite to replace it")
    obsolete = [os.path.join(path, "steps", e) for e in os.listdir(os.path.join(path, "steps"))
                if e.endswith(".npz") and os.path.join("steps", e) not in {step_file(s) for s in m["steps"]}]
    chunks = [int(rel[-12:-4]) for rel in m["scalars"]]
    next_chunk = max(chunks, default=-1) + 1
    names, sizes, rows, count = [], [], [], 0
    for rel, n in zip(m["scalars"], m["scalar_bytes"]):
        a = check_scalar_arrays(load_npz(os.path.join(path, rel), n), os.path.join(path, rel))
        kept = a["step"] < start_step
        count += int(kept.sum())
        if kept.all():
            names.append(rel)
            sizes.append(n)
            continue
        obsolete.append(os.path.join(path, rel))
        if kept.any():
            rel = os.path.join("scalars", f"scalars-{next_chunk:08d}.npz")
            next_chunk += 1
            names.append(rel)
            sizes.append(save_npz(os.path.join(path, rel), {k: v[kept] for k, v in a.items()}))
    m.update(scalars=names, scalar_bytes=sizes, scalar_steps=count, complete=False)
    m.pop("error", None)
    m["resumed_at"] = [*m.get("resumed_at", []), int(start_step)]
    return m, obsolete, next_chunk


class TraceWriter:
    """The disk side of a ``Tracer``: writes ``manifest`` (a dict it keeps up to date) and the chunks of ``path``.

    ``submit(writer.write_step, ...)`` queues a write (``background=True``: file writes, which release the GIL,
    overlap the next training steps) or runs it inline. A failed write is raised as TraceError on the training
    thread, at the next ``submit``, ``flush`` or ``close``.
    """

    def __init__(self, path, manifest, *, background=True, scalar_chunk=0, obsolete=()):
        self.path, self.manifest = path, manifest
        self.error = None
        self._scalar_chunk = scalar_chunk  # the next scalars chunk's number (a continued trace has some)
        self.write_manifest()
        for f in obsolete:  # chunks a continued trace no longer lists: deleted once the manifest is written
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
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
