"""A model trace's manifest checked as untrusted input (numbacnn.trace.manifest): every field the reader uses has
the right type and range, and every file name it lists stays inside the trace folder.

``check_manifest`` runs when ``numbacnn.trace.Trace`` opens a folder; ``check_step_arrays`` and
``check_scalar_arrays`` when it loads a chunk, so a damaged or hand-made file raises ``TraceError`` (naming the
file and the field) instead of an IndexError, a MemoryError or a wrong array.
"""
from __future__ import annotations

import os
import re

import numpy as np

from .format import LAYER_KINDS, MODEL_FORMAT, PARAM_KINDS, PROBE_KINDS, TraceError, check_header

SCALAR_NAME = re.compile(r"^scalars[/\\]scalars-\d{8}\.npz$")  # the only names ``scalars`` may list
FLOAT_DTYPES = ("float16", "float32", "float64")
MAX_ELEMENTS = 1 << 28  # per parameter or per-example map: 1 GB of float32, far above any model numbacnn traces


def _int(v, low=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _shape_entry(e):
    """True for {"shape": [ints >= 0], "dtype": a float dtype} of at most MAX_ELEMENTS elements."""
    if not isinstance(e, dict) or not isinstance(e.get("shape"), list) or len(e["shape"]) > 8:
        return False
    if not all(_int(v) for v in e["shape"]) or e.get("dtype") not in FLOAT_DTYPES:
        return False
    return int(np.prod(e["shape"], dtype=object)) <= MAX_ELEMENTS


def check_manifest(m, folder) -> dict:
    """``m`` (the parsed manifest.json of ``folder``) when every field is well formed; TraceError naming the
    field otherwise."""
    where = f"{os.fspath(folder)!r}: manifest.json"

    def bad(field, why):
        raise TraceError(f"{where}: {field} {why}")

    check_header(m, MODEL_FORMAT, folder)
    for key in ("steps", "step_bytes", "layers", "params", "scalars", "scalar_bytes"):
        if not isinstance(m.get(key), list):
            bad(key, f"must be a list, got {type(m.get(key)).__name__}")
    steps = m["steps"]
    if not all(_int(s) for s in steps):
        bad("steps", "must hold step numbers (ints >= 0)")
    if any(a >= b for a, b in zip(steps, steps[1:])):
        bad("steps", "must be increasing")
    for key, names in (("step_bytes", steps), ("scalar_bytes", m["scalars"])):
        if len(m[key]) != len(names) or not all(_int(n) for n in m[key]):
            bad(key, f"must hold one size in bytes (an int >= 0) per entry of {key.split('_')[0]}s")
    for name in m["scalars"]:
        if not isinstance(name, str) or not SCALAR_NAME.match(name):
            bad("scalars", f"lists {name!r}, not a scalars/scalars-<n>.npz chunk of the trace")
    sampling = m.get("sampling")
    if not isinstance(sampling, dict):
        bad("sampling", f"must be an object, got {type(sampling).__name__}")
    for key, low in (("every", 1), ("samples", 0)):
        if not _int(sampling.get(key), low):
            bad(f"sampling.{key}", f"must be an int >= {low}, got {sampling.get(key)!r}")
    if not _int(sampling.get("probe", 0)) or not _int(sampling.get("start_step", 0)):
        bad("sampling", "probe and start_step must be ints >= 0")
    for key, kind in (("complete", bool), ("hyperparameters", dict), ("target", str), ("error", str),
                      ("scalar_steps", int)):
        if key in m and not isinstance(m[key], kind):
            bad(key, f"must be a {kind.__name__}, got {type(m[key]).__name__}")
    names = set()
    for e in m["layers"]:
        if not isinstance(e, dict) or not _int(e.get("index")) or not isinstance(e.get("name"), str) \
                or not isinstance(e.get("type"), str):
            bad("layers", f"holds an invalid entry {e!r:.80}")
        if e["name"] in names:
            bad("layers", f"names layer {e['name']!r} twice")
        names.add(e["name"])
        for kind in LAYER_KINDS:
            if kind in e and not _shape_entry(e[kind]):
                bad(f"layers[{e['name']}].{kind}", f"must be {{shape, dtype}}, got {e[kind]!r:.80}")
    names = set()
    for e in m["params"]:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not _shape_entry(e):
            bad("params", f"holds an invalid entry {e!r:.80} (name, shape, float dtype)")
        if e["name"] in names:
            bad("params", f"names parameter {e['name']!r} twice")
        names.add(e["name"])
    return m


def check_step_arrays(m, arrays, path) -> dict:
    """``arrays`` (one step chunk) when every array the manifest describes has its shape and dtype; TraceError
    naming the chunk and the array otherwise. Arrays of kinds this version does not know are left alone."""
    layers = {e["index"]: e for e in m["layers"]}
    params = {e["name"]: e for e in m["params"]}
    n = None  # the samples of the step: every layer/... array has the same leading axis
    for key, a in arrays.items():
        head, _, rest = key.partition("/")
        name, _, kind = rest.rpartition("/")
        if head == "param" and name in params and kind in PARAM_KINDS:
            e = params[name]
            if a.shape != tuple(e["shape"]) or str(a.dtype) != e["dtype"]:
                raise TraceError(f"trace chunk {os.fspath(path)!r}: {key} has shape {a.shape} {a.dtype}, the "
                                 f"manifest says {tuple(e['shape'])} {e['dtype']}")
        elif head in ("layer", "probe") and kind in (LAYER_KINDS if head == "layer" else PROBE_KINDS):
            entry = layers.get(int(name)) if name.isdigit() else None
            want = None if entry is None else entry.get(kind)
            ok = entry is not None and a.ndim >= 1 and str(a.dtype) in FLOAT_DTYPES
            if ok and want is not None:
                ok = list(a.shape[1:]) == want["shape"] and str(a.dtype) == want["dtype"]
            if ok and head == "layer":
                ok = n is None or a.shape[0] == n
                n = a.shape[0]
            if not ok:
                raise TraceError(f"trace chunk {os.fspath(path)!r}: {key} has shape {a.shape} {a.dtype}, which "
                                 f"does not fit the manifest's layers")
    return arrays


def check_scalar_arrays(arrays, path) -> dict:
    """A scalars chunk: step (ints), loss and acc (floats), one-dimensional and of one length; TraceError otherwise."""
    a = [arrays.get(k) for k in ("step", "loss", "acc")]
    ok = all(v is not None and v.ndim == 1 for v in a) and len({len(v) for v in a}) == 1
    if not ok or a[0].dtype.kind not in "iu" or a[1].dtype.kind != "f" or a[2].dtype.kind != "f":
        raise TraceError(f"trace chunk {os.fspath(path)!r} is not a scalars chunk (step ints, loss and acc floats "
                         f"of one length)")
    return arrays
