"""The trace file format's building blocks (numbacnn.trace.format): atomic writes, NumPy ``.npz`` + JSON only
(no pickle), clear errors, and the names of a model trace's files and arrays.

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``,
so a reader sees either the old file or the whole new one, never half of it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .._io import atomic_path
from .._npz import read_npz

MODEL_FORMAT = "numbacnn-trace"    # a folder: manifest.json + step/scalar chunks (numbacnn.trace.Tracer)
OP_FORMAT = "numbacnn-optrace"     # one .npz: the windows of one op call (numbacnn.trace.ops)
VERSION = 1                        # bump when a reader of this version could misread a newer file
HEADER_KEY = "__header__"          # the JSON header stored inside an op-trace .npz as a 0-d string array
MANIFEST = "manifest.json"         # a model trace folder's table of contents (numbacnn.trace.model docstring)
LAYER_KINDS = ("x", "y", "grad_y", "grad_x")      # layer/<i>/<kind> arrays of a recorded step
PROBE_KINDS = ("x", "y")                          # probe/<i>/<kind>
PARAM_KINDS = ("value", "grad", "momentum_before", "momentum_after", "value_after", "update")  # param/<name>/...


def step_file(step) -> str:
    """Where recorded step ``step`` lives inside a model trace folder: ``steps/step-00000050.npz``."""
    return os.path.join("steps", f"step-{step:08d}.npz")


class TraceError(ValueError):
    """A file that is not a trace, is truncated or corrupt, or comes from a newer format version."""


def _atomic(path, write):
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then move it into place (fsynced)."""
    with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as f:
        write(f)


def save_npz(path, arrays: dict) -> int:
    """Write ``arrays`` (name -> ndarray) to ``path`` atomically, uncompressed; returns the size in bytes."""
    _atomic(path, lambda f: np.savez(f, allow_pickle=False, **arrays))
    return os.path.getsize(path)


def write_json(path, obj, compact=False) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (``compact``: no indentation)."""
    data = json.dumps(obj, indent=None if compact else 1, sort_keys=True, allow_nan=True,
                      separators=(",", ":") if compact else None).encode()
    _atomic(path, lambda f: f.write(data))


MAX_JSON_BYTES = 256 << 20  # a manifest this large is not one numbacnn wrote (10^6 steps take about 30 MB)


def read_json(path, what="manifest"):
    """Read a JSON file; TraceError if it is missing, not a file, unreadable, too large, truncated or not JSON."""
    shown = os.fspath(path)
    folder, name = os.path.split(shown)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_JSON_BYTES:
                raise TraceError(f"{shown!r}: the {what} is larger than {MAX_JSON_BYTES >> 20} MB: not a numbacnn "
                                 f"{what}")
            return json.loads(f.read().decode())
    except FileNotFoundError:
        raise TraceError(f"{folder!r} is not a numbacnn trace: its {what} ({name}) is missing") from None
    except IsADirectoryError:
        raise TraceError(f"{shown!r}: the {what} is a folder, not a file") from None
    except OSError as exc:  # EIO, EACCES, ...
        raise TraceError(f"{shown!r}: the {what} cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, TraceError):
            raise
        raise TraceError(f"{shown!r}: the {what} is truncated or corrupt ({exc})") from None


def load_npz(path, expected_size: int | None = None, what="trace chunk") -> dict:
    """All arrays of an ``.npz`` as a dict (every member's header checked before it is read, pickle refused:
    ``numbacnn._npz``); TraceError naming the file if it is missing, truncated, corrupt or changed."""
    path = os.fspath(path)
    if expected_size is not None and os.path.isfile(path) and os.path.getsize(path) != expected_size:
        raise TraceError(f"{path!r}: the {what} is truncated or was changed: {os.path.getsize(path)} bytes, the "
                         f"manifest says {expected_size}")
    return read_npz(path, TraceError, what)


def check_header(header, expected_format: str, path) -> None:
    """TraceError unless ``header`` names ``expected_format`` at a version this numbacnn can read."""
    if not isinstance(header, dict) or header.get("format") not in (MODEL_FORMAT, OP_FORMAT):
        raise TraceError(f"{os.fspath(path)!r} is not a numbacnn trace (no numbacnn trace header)")
    if header["format"] != expected_format:
        raise TraceError(f"{os.fspath(path)!r} is a {header['format']!r} file, expected {expected_format!r}")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise TraceError(f"{os.fspath(path)!r} has an invalid format version {version!r}")
    if version > VERSION:
        raise TraceError(f"{os.fspath(path)!r} uses trace format version {version}, newer than this numbacnn "
                         f"reads (version {VERSION}): upgrade numbacnn to read it")


def jsonable(v):
    """Tuples, NumPy scalars and arrays as plain JSON values."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
