"""``OpTrace`` (numbacnn.trace.record): the record of one op call (every window of it), and its ``.npz`` file format.

No Numba here: a record made by ``numbacnn.trace.ops`` can be read and drawn by a process that never loads a
kernel (the CLI computes traces in a forked child while it loads matplotlib). Fields: see ``numbacnn.trace.ops``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .format import HEADER_KEY, OP_FORMAT, VERSION, TraceError, check_header, jsonable, load_npz, save_npz


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
        """Read a file written by ``save``; TraceError for non-trace, truncated or newer-version files."""
        import json

        if os.path.isdir(path):
            raise TraceError(f"{os.fspath(path)!r} is a folder (a model trace?), not an op trace file")
        arrays = load_npz(path)
        if HEADER_KEY not in arrays:
            raise TraceError(f"{os.fspath(path)!r} is not a numbacnn trace (no numbacnn trace header)")
        try:
            header = json.loads(str(arrays.pop(HEADER_KEY)))
        except ValueError as exc:
            raise TraceError(f"{os.fspath(path)!r}: corrupt trace header ({exc})") from None
        check_header(header, OP_FORMAT, path)
        return cls(header["op"], header["meta"], arrays)

    def __repr__(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays.items())
        return f"OpTrace({self.op!r}, {len(self)} windows, {shapes})"
