"""``OpTrace`` (numbacnn.trace.record): the record of one op call (every window of it), and its ``.npz`` file format.

No Numba here: a record made by ``numbacnn.trace.ops`` can be read and drawn by a process that never loads a
kernel (the CLI computes traces in a forked child while it loads matplotlib). Fields: see ``numbacnn.trace.ops``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .format import HEADER_KEY, OP_FORMAT, VERSION, TraceError, check_header, jsonable, load_npz, save_npz

# arrays that are whole tensors; every other array has one row per window (gw_*: per grad_weight element)
WHOLE = ("x", "weight", "out", "kernel", "bias", "indices", "grad_out", "grad_x", "grad_weight", "grad_bias")
PAIRS = ("stride", "padding", "dilation", "kernel_size")  # meta entries that are (h, w) pairs of ints


def check_op_trace(op, meta, arrays, path) -> None:
    """TraceError (naming the file and the field) unless ``op`` is a name, ``meta`` a dict whose (h, w) pairs are
    ints, and ``arrays`` hold an integer position array (M, 4) with every per-window array of M rows."""
    where = os.fspath(path)
    if not isinstance(op, str) or not isinstance(meta, dict):
        raise TraceError(f"{where!r}: corrupt trace header (op must be a name and meta an object, got "
                         f"{type(op).__name__} and {type(meta).__name__})")
    for key in PAIRS:
        v = meta.get(key)
        if key in meta and not (isinstance(v, list) and len(v) in (2, 4) and
                                all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in v)):
            raise TraceError(f"{where!r}: meta {key} must be a pair of ints >= 0, got {v!r:.60}")
    for prefix in ("", "gw_", "gx_"):
        pos = arrays.get(prefix + "pos")
        if pos is None:
            if prefix == "" and "gx_pos" not in arrays:
                raise TraceError(f"{where!r}: the op trace has no window positions (array 'pos' or 'gx_pos')")
            continue
        if pos.ndim != 2 or pos.shape[1] != 4 or pos.dtype.kind not in "iu":
            raise TraceError(f"{where!r}: {prefix}pos must be an int array (M, 4), got {pos.shape} {pos.dtype}")
        rows = [k for k in arrays if k not in WHOLE and (k.startswith(prefix) if prefix else
                                                          not k.startswith(("gw_", "gx_")))]
        for k in rows:
            if arrays[k].ndim < 1 or len(arrays[k]) != len(pos):
                raise TraceError(f"{where!r}: {k} has shape {arrays[k].shape}, expected one row per window "
                                 f"({len(pos)})")


@dataclass
class OpTrace:
    """One op call: ``op`` name, JSON-able ``meta`` (options, shapes, target) and named arrays (see module doc)."""

    op: str
    meta: dict
    arrays: dict = field(default_factory=dict)

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"OpTrace of {self.__dict__.get('op')!r} has no field {name!r}; "
                             f"it has {sorted(arrays)}")

    def __len__(self):
        """Number of windows (output elements) recorded."""
        key = "pos" if "pos" in self.arrays else "gx_pos"
        return len(self.arrays[key])

    def save(self, path) -> int:
        """Write to one ``.npz`` atomically (NumPy arrays + a JSON header); returns its size in bytes."""
        import json

        header = {"format": OP_FORMAT, "version": VERSION, "op": self.op, "meta": jsonable(self.meta)}
        return save_npz(path, {HEADER_KEY: np.array(json.dumps(header)), **self.arrays})

    @classmethod
    def load(cls, path) -> "OpTrace":
        """Read a file written by ``save``; TraceError for non-trace, truncated, damaged or newer-version files
        (``check_op_trace``)."""
        import json

        if os.path.isdir(path):
            raise TraceError(f"{os.fspath(path)!r} is a folder (a model trace?), not an op trace file")
        arrays = load_npz(path, what="trace file")
        if HEADER_KEY not in arrays:
            raise TraceError(f"{os.fspath(path)!r} is not a numbacnn trace (no numbacnn trace header)")
        try:
            header = json.loads(str(arrays.pop(HEADER_KEY)))
        except (ValueError, RecursionError) as exc:
            raise TraceError(f"{os.fspath(path)!r}: corrupt trace header ({exc})") from None
        check_header(header, OP_FORMAT, path)
        check_op_trace(header.get("op"), header.get("meta"), arrays, path)
        return cls(header["op"], header["meta"], arrays)

    def __repr__(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays.items())
        return f"OpTrace({self.op!r}, {len(self)} windows, {shapes})"
