"""Reading traces back (numbacnn.trace.reader): ``load(path)``, and ``Trace``, a model trace folder's reader.

Only NumPy and JSON here (no Numba): ``numbacnn.viz`` draws traces without loading a kernel. The folder layout
and every array's name are in ``numbacnn.trace.model``'s docstring; ``numbacnn.trace.writer`` writes them.
"""
from __future__ import annotations

import os

import numpy as np

from .format import LAYER_KINDS, MANIFEST, PARAM_KINDS, PROBE_KINDS, TraceError, load_npz, read_json, step_file
from .manifest import check_manifest, check_scalar_arrays, check_step_arrays
from .record import OpTrace


def load(path):
    """A model trace folder -> ``Trace``; an op trace file -> ``OpTrace``. TraceError for anything else.

    Every file is untrusted: a damaged, truncated or hand-made trace raises TraceError (a ValueError) naming the
    file and what is wrong, when it is opened or when the damaged chunk is first read."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return Trace(path)
    if not os.path.exists(path):
        raise TraceError(f"{path!r} does not exist")
    return OpTrace.load(path)


class Trace:
    """A model trace folder read back: the manifest plus query methods; arrays are loaded on demand."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise TraceError(f"{self.path!r} is not a numbacnn trace folder")
        self.manifest = check_manifest(read_json(os.path.join(self.path, MANIFEST)), self.path)
        self._cache = (None, None)

    # --- what is there
    @property
    def steps(self) -> np.ndarray:
        """The recorded step numbers, in order."""
        return np.array(self.manifest["steps"], dtype=np.int64)

    @property
    def layers(self) -> list:
        """Names of the recorded layers ("0", "1", ...)."""
        return [e["name"] for e in self.manifest["layers"]]

    @property
    def params(self) -> list:
        """Names of the recorded parameters ("0.weight", ...)."""
        return [e["name"] for e in self.manifest["params"]]

    @property
    def complete(self) -> bool:
        """True when the tracer was closed normally (False: the run was interrupted or failed)."""
        return bool(self.manifest.get("complete"))

    @property
    def has_probe(self) -> bool:
        """True when the run recorded a fixed probe (``Tracer(probe=...)``); older traces have none."""
        return bool((self.manifest.get("sampling") or {}).get("probe"))

    @property
    def hyperparameters(self) -> dict:
        return dict(self.manifest.get("hyperparameters", {}))

    def _file(self, rel) -> str:
        """The full path of a file the manifest lists; TraceError when it resolves outside the trace folder."""
        full = os.path.join(self.path, rel)
        root = os.path.realpath(self.path)
        if os.path.commonpath([root, os.path.realpath(full)]) != root:
            raise TraceError(f"{self.path!r}: the manifest lists {rel!r}, which is outside the trace folder")
        return full

    def _chunks(self):
        """[(name in the folder, size in bytes the manifest lists, "step" or "scalars")] of every listed chunk."""
        m = self.manifest
        return [(step_file(s), n, "step") for s, n in zip(m["steps"], m["step_bytes"])] + \
            [(rel, n, "scalars") for rel, n in zip(m["scalars"], m["scalar_bytes"])]

    def problems(self, verify=False) -> list:
        """What is wrong with the files of this trace, one line each naming the file ([] when nothing is).

        Always: every chunk the manifest lists exists with the listed size. ``verify``: every chunk is also
        opened and its arrays checked against the manifest (shapes, dtypes, the archive's checksums)."""
        out = []
        for rel, n, kind in self._chunks():
            try:
                path = self._file(rel)
            except TraceError as exc:
                out.append(str(exc))
                continue
            try:
                size = os.path.getsize(path)
            except OSError as exc:
                out.append(f"{path}: missing or unreadable ({exc.strerror or exc})")
                continue
            if size != n:
                out.append(f"{path}: {size} bytes, the manifest says {n} (truncated or changed)")
            elif verify:
                try:
                    arrays = load_npz(path, n)
                    if kind == "step":
                        check_step_arrays(self.manifest, arrays, path)
                    else:
                        check_scalar_arrays(arrays, path)
                except TraceError as exc:
                    out.append(str(exc))
        return out

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    def size_bytes(self) -> int:
        """Bytes on disk of the manifest and every listed chunk."""
        return os.path.getsize(os.path.join(self.path, MANIFEST)) + sum(self.manifest["step_bytes"]) + \
            sum(self.manifest["scalar_bytes"])

    # --- arrays
    def _layer_index(self, layer):
        for e in self.manifest["layers"]:
            if str(layer) == e["name"] or (isinstance(layer, (int, np.integer)) and layer == e["index"]):
                return e["index"]
        raise KeyError(f"layer {layer!r} was not recorded; recorded layers: {self.layers}")

    def step_arrays(self, step) -> dict:
        """Every array recorded at ``step`` (name -> ndarray; names as in the module docstring)."""
        step = int(step)
        if self._cache[0] == step:
            return self._cache[1]
        try:
            k = self.manifest["steps"].index(step)
        except ValueError:
            raise KeyError(f"step {step} was not recorded; recorded steps: {self._steps_text()}") from None
        path = self._file(step_file(step))
        arrays = check_step_arrays(self.manifest, load_npz(path, self.manifest["step_bytes"][k]), path)
        self._cache = (step, arrays)
        return arrays

    def _steps_text(self):
        s = self.manifest["steps"]
        return str(s) if len(s) <= 8 else f"[{s[0]}, {s[1]}, ..., {s[-1]}] ({len(s)} steps)"

    def _layer_array(self, prefix, layer, step, kind):
        """The array ``<prefix>/<layer index>/<kind>`` of ``step``; KeyError naming what is missing."""
        key = f"{prefix}/{self._layer_index(layer)}/{kind}"
        arrays = self.step_arrays(step)
        if key not in arrays:
            what = kind if prefix == "layer" else f"{prefix} {kind}"
            raise KeyError(f"{what} of layer {layer!r} is not in step {step}")
        return arrays[key]

    def _over_steps(self, read, layer, kind, steps):
        """``read(layer, step, kind)`` over the recorded steps (or ``steps``) stacked: (S, ...)."""
        steps = self.manifest["steps"] if steps is None else [int(v) for v in steps]
        maps = [read(layer, s, kind) for s in steps]
        shapes = {m.shape for m in maps}
        if len(shapes) > 1:
            raise ValueError(f"{kind} of layer {layer!r} changes shape across steps {sorted(shapes)} (a smaller "
                             f"last batch?): pass steps=... or read the steps one by one")
        return np.stack(maps) if maps else np.zeros((0,))

    def feature_map(self, layer, step, kind="y") -> np.ndarray:
        """Layer ``layer``'s output (kind "y"), input ("x") or gradients ("grad_y", "grad_x") at ``step``:
        (samples, ...) as recorded."""
        if kind not in LAYER_KINDS:
            raise ValueError(f"kind must be one of {LAYER_KINDS}, got {kind!r}")
        return self._layer_array("layer", layer, step, kind)

    def probe_map(self, layer, step, kind="y") -> np.ndarray:
        """Layer ``layer``'s output (kind "y") or input ("x") for the fixed probe at ``step``: (N probe
        examples, ...), the same examples at every step (unlike ``feature_map``, which follows the batch)."""
        if kind not in PROBE_KINDS:
            raise ValueError(f"kind must be one of {PROBE_KINDS} for a probe, got {kind!r}")
        if not self.has_probe:
            raise KeyError(f"{self.path!r} has no probe (record one with Tracer(probe=...) or train-lenet "
                           f"--trace-samples N > 0); use feature_map for the batch's examples")
        return self._layer_array("probe", layer, step, kind)

    def probe_maps(self, layer, kind="y", steps=None) -> np.ndarray:
        """``probe_map`` over the recorded steps (or ``steps``) as one array (S, N probe examples, ...)."""
        return self._over_steps(self.probe_map, layer, kind, steps)

    def feature_maps(self, layer, kind="y", steps=None) -> np.ndarray:
        """``feature_map`` over the recorded steps (or ``steps``) as one array (S, samples, ...)."""
        return self._over_steps(self.feature_map, layer, kind, steps)

    def param(self, name, kind="value", steps=None) -> np.ndarray:
        """Parameter ``name``'s value / grad / momentum_before / momentum_after / value_after / update
        (value_after - value) over the recorded steps (or ``steps``) as one array (S, *shape);
        NaN where a step has none (e.g. no momentum buffer yet)."""
        if kind not in PARAM_KINDS:
            raise ValueError(f"kind must be one of {PARAM_KINDS}, got {kind!r}")
        entry = next((e for e in self.manifest["params"] if e["name"] == name), None)
        if entry is None:
            raise KeyError(f"parameter {name!r} was not recorded; recorded parameters: {self.params}")
        steps = self.manifest["steps"] if steps is None else [int(s) for s in steps]
        out = np.full((len(steps), *entry["shape"]), np.nan, dtype=np.dtype(entry["dtype"]))
        for k, s in enumerate(steps):
            a = self.step_arrays(s)
            if kind == "update":
                if f"param/{name}/value" in a:
                    out[k] = a[f"param/{name}/value_after"] - a[f"param/{name}/value"]
            elif f"param/{name}/{kind}" in a:
                out[k] = a[f"param/{name}/{kind}"]
        return out

    def grad(self, name, steps=None) -> np.ndarray:
        """``param(name, "grad")``."""
        return self.param(name, "grad", steps)

    def momentum(self, name, steps=None, after=True) -> np.ndarray:
        """The momentum buffer after (or before) each recorded step."""
        return self.param(name, "momentum_after" if after else "momentum_before", steps)

    def scalars(self) -> dict:
        """{"step", "loss", "acc"}: arrays over every logged step, in logging order."""
        parts = [check_scalar_arrays(load_npz(self._file(rel), n), self._file(rel))
                 for rel, n in zip(self.manifest["scalars"], self.manifest["scalar_bytes"])]
        if not parts:
            return {"step": np.zeros(0, np.int64), "loss": np.zeros(0), "acc": np.zeros(0)}
        return {k: np.concatenate([p[k] for p in parts]) for k in ("step", "loss", "acc")}

    def __repr__(self):
        state = "complete" if self.complete else "incomplete"
        return (f"Trace({self.path!r}, {len(self.manifest['steps'])} recorded steps, {len(self.layers)} layers, "
                f"{len(self.params)} params, {state})")
