"""Golden files: one .npz per op family, made by PyTorch, read with plain NumPy (no pickle).

Layout: arrays are stored as ``"<case>/<field>"``; the key ``"__cases__"`` holds a JSON list of
``{"name": ..., "options": {...}}`` in order. Options are plain JSON (ints, floats, strings, lists, bools).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent


def save_cases(path, cases):
    """cases: list of dicts {"name": str, "options": dict, "arrays": {field: ndarray}}; written atomically."""
    payload = {"__cases__": np.array(json.dumps([{"name": c["name"], "options": c["options"]} for c in cases]))}
    for c in cases:
        for field, arr in c["arrays"].items():
            payload[f"{c['name']}/{field}"] = np.asarray(arr)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **payload)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_cases(name_or_path):
    """[(name, options, {field: array})] from a golden file (a name like "conv" means tests/golden/conv.npz)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = GOLDEN_DIR / f"{name_or_path}.npz"
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["__cases__"]))
        out = []
        for c in meta:
            prefix = c["name"] + "/"
            arrays = {k[len(prefix):]: f[k] for k in f.files if k.startswith(prefix)}
            out.append((c["name"], c["options"], arrays))
    return out
