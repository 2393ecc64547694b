"""Model-level traces: what a ``numbacnn.nn.Sequential`` and its SGD optimizer computed, streamed to disk.

``Tracer(model, optimizer, path)`` attaches as an observer of the model and wraps ``optimizer.step``.
Step s (counted in optimizer steps, from 0) is recorded when ``s % every == 0``: for the first ``samples``
examples of the batch, every chosen layer's input / output and the gradients flowing back through it,
and for every chosen parameter its value, gradient, momentum buffer before and after, and the update applied.
With ``probe=`` (fixed examples (N, C, H, W), e.g. the first test images) each recorded step also runs the
model forward on the probe, with the parameters the batch used (inside optimizer.step, before the update),
so one image can be followed across training; the probe forward leaves training untouched.
``tracer.log(loss=..., acc=...)`` records the scalars of every step (recorded or not).

On disk a trace is a folder (e.g. ``run.nctrace/``) holding NumPy and JSON only (no pickle):
    manifest.json                 format, version, numbacnn version, target, hyperparameters, sampling, layers
                                  (shapes per example), params (shapes), the completed steps and chunk sizes,
                                  "complete" (true once the tracer was closed)
    steps/step-00000050.npz       one recorded step; keys (per example shapes, leading axis = samples):
        layer/<i>/x, layer/<i>/y             input and output of layer i
        layer/<i>/grad_y, layer/<i>/grad_x   gradient arriving at layer i's output, leaving through its input
        param/<name>/value                   the parameter before the step ("0.weight", ...)
        param/<name>/grad                    its gradient
        param/<name>/momentum_before, param/<name>/momentum_after   the momentum buffer (absent when none)
        param/<name>/value_after             the parameter after the step (the update applied is
                                             value_after - value: ``Trace.param(name, "update")``)
        probe/<i>/x, probe/<i>/y             input and output of layer i for the probe (leading axis = the N
                                             probe examples; only with a probe: manifest sampling.probe = N,
                                             0 without; traces written before probes lack the field)
    scalars/scalars-00000000.npz  step (int64), loss, acc (float64, NaN when not logged) for logged steps
Each chunk is written to a temporary file and renamed; the manifest is rewritten the same way after each
completed step, so a run killed at any moment leaves a trace readable up to its last completed step, and a
chunk is only ever listed (and loaded) once it is whole.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil

import numpy as np

from .._checks import is_device_array
from .format import MODEL_FORMAT, VERSION, TraceError, check_header, jsonable, load_npz, read_json, save_npz, \
    write_json

DEFAULT_EVERY = 50    # 10 epochs of LeNet at batch 256 (2350 steps) -> 47 recorded steps, about 100 MB
DEFAULT_SAMPLES = 4
MANIFEST = "manifest.json"
LAYER_KINDS = ("x", "y", "grad_y", "grad_x")
PROBE_KINDS = ("x", "y")
PARAM_KINDS = ("value", "grad", "momentum_before", "momentum_after", "value_after", "update")
SCALAR_FLUSH = 4096   # logged scalars held in memory at most before they are written out


def _to_host(a, rows=None):
    """A host copy of ``a`` (NumPy or CUDA device array), only its first ``rows`` rows when given."""
    if a is None:
        return None
    if rows is not None:
        a = a[:rows]
    if is_device_array(a) or hasattr(a, "copy_to_host"):  # Numba device arrays (also the simulator's)
        return np.array(a.copy_to_host())
    return np.array(a, copy=True)


def _version():
    import numbacnn

    return numbacnn.__version__


def _step_file(step):
    return os.path.join("steps", f"step-{step:08d}.npz")


class Tracer:
    """Record a training run of ``model`` (a ``numbacnn.nn.Sequential``) and ``optimizer`` into ``path``.

    every: record steps 0, every, 2*every, ...; samples: examples of the batch kept per feature map
    (0: parameters only); layers / params: indices or names to keep (None: all); meta: extra JSON-able
    hyperparameters (batch size, epochs, ...); start_step: the first step's number (resumed runs);
    background: write files on a writer thread (one step in flight at most) instead of inline;
    probe: fixed examples (N, C, H, W) (NumPy, or a device array for a CUDA model) run forward at every
    recorded step before the update, recorded as probe/<i>/x and probe/<i>/y (``Trace.probe_map``).
    Use as a context manager, or call ``close()``; ``log(loss=..., acc=...)`` after each step.
    """

    def __init__(self, model, optimizer, path, every=DEFAULT_EVERY, samples=DEFAULT_SAMPLES, layers=None,
                 params=None, *, meta=None, start_step=0, overwrite=True, background=True, probe=None):
        if not hasattr(model, "add_observer"):
            raise TypeError(f"model must be a numbacnn.nn.Sequential (with add_observer), got {type(model).__name__}")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizer must have a step() method, got {type(optimizer).__name__}")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
            raise ValueError(f"samples must be an int >= 0, got {samples!r}")
        self.model, self.optimizer = model, optimizer
        self.path = os.fspath(path)
        self.every, self.samples = int(every), int(samples)
        self.step = int(start_step)
        self._layer_names = [str(i) for i in range(len(model))] if hasattr(model, "__len__") else None
        self._layers = self._select_layers(layers)
        self._probe = self._check_probe(probe)
        self._probe_checked = False
        self._batch_shape = None  # per-example shape of the batches, seen at the first recorded forward
        names = {id(p): n for n, p in model.named_parameters()} if hasattr(model, "named_parameters") else {}
        self._params = []  # (name, Parameter)
        for k, p in enumerate(optimizer.params):
            name = names.get(id(p)) or getattr(p, "name", None) or f"param{k}"
            if params is None or name in params or k in params:
                self._params.append((name, p))
        if params is not None:
            known = {n for n, _ in self._params} | set(range(len(optimizer.params)))
            missing = [q for q in params if q not in known]
            if missing:
                raise ValueError(f"params {missing} are not parameters of the optimizer; it has "
                                 f"{[names.get(id(p), f'param{k}') for k, p in enumerate(optimizer.params)]}")
        self._pending = {}
        self._scalars = []  # (step, loss, acc)
        self._scalar_chunk = 0
        self._closed = False
        self._error = None
        self._prepare_folder(overwrite)
        hyper = dict(getattr(optimizer, "defaults", {}))
        hyper.update(meta or {})
        self.manifest = {
            "format": MODEL_FORMAT, "version": VERSION, "numbacnn_version": _version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "complete": False, "target": getattr(model, "device", "cpu"),
            "model": repr(model), "optimizer": type(optimizer).__name__, "hyperparameters": jsonable(hyper),
            "sampling": {"every": self.every, "samples": self.samples, "layers": layers if layers is None else
                         [str(v) for v in layers], "params": None if params is None else [str(v) for v in params],
                         "start_step": self.step, "probe": 0 if self._probe is None else int(self._probe.shape[0])},
            "layers": [{"index": i, "name": self._layer_names[i], "type": type(model[i]).__name__}
                       for i in sorted(self._layers)] if self.samples or self._probe is not None else [],
            "params": [{"name": n, "shape": list(p.shape), "dtype": str(p.dtype)} for n, p in self._params],
            "steps": [], "step_bytes": [], "scalars": [], "scalar_bytes": [], "scalar_steps": 0,
        }
        self._write_manifest()
        self._queue = self._thread = None
        if background:  # file writes (which release the GIL) overlap the next training steps
            import queue
            import threading

            self._queue = queue.Queue(maxsize=1)  # at most one step waits: memory stays bounded
            self._thread = threading.Thread(target=self._writer, name="numbacnn-trace-writer", daemon=True)
            self._thread.start()
        model.add_observer(self)
        self._orig_step = optimizer.step
        self._wrapped = self._step  # one bound method, so close() can recognise it
        optimizer.step = self._wrapped

    # --- setup
    def _select_layers(self, layers):
        n = len(self._layer_names)
        if layers is None:
            return set(range(n))
        out = set()
        for v in layers:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and -n <= v < n:
                out.add(int(v) % n)
            elif str(v) in self._layer_names:
                out.add(self._layer_names.index(str(v)))
            else:
                raise ValueError(f"layers: {v!r} is not a layer of the model (it has layers 0..{n - 1})")
        return out

    def _check_probe(self, probe):
        """The probe as a float32 (N, C, H, W) array (host, or device for a CUDA model), or None."""
        if probe is None:
            return None
        device = is_device_array(probe) or hasattr(probe, "copy_to_host")
        if not device:
            try:
                probe = np.asarray(probe)
            except Exception as exc:
                raise ValueError(f"probe must be an array of examples (N, C, H, W), got {type(probe).__name__}") \
                    from exc
            if probe.dtype == object or not (np.issubdtype(probe.dtype, np.number) or probe.dtype == bool):
                raise ValueError(f"probe must hold numbers, got dtype {probe.dtype}")
        shape = tuple(probe.shape)
        if len(shape) != 4 or shape[0] < 1:
            raise ValueError(f"probe must be examples (N, C, H, W) with N >= 1, got shape {shape}")
        first = self.model[0] if self._layer_names else None
        c = getattr(first, "in_channels", None)
        if c is not None and shape[1] != c:
            raise ValueError(f"probe has shape {shape}: {c} channels expected (the first layer is "
                             f"{type(first).__name__} with in_channels={c})")
        if device:
            if getattr(self.model, "device", "cpu") != "cuda":
                probe = _to_host(probe)
            elif np.dtype(probe.dtype) != np.float32:
                raise ValueError(f"probe on the device must be float32, got {probe.dtype}")
        if not device or getattr(self.model, "device", "cpu") != "cuda":
            probe = np.array(probe, dtype=np.float32, order="C", copy=True)  # as training feeds the model
        return probe

    def _prepare_folder(self, overwrite):
        p = self.path
        if os.path.exists(p):
            if not os.path.isdir(p):
                raise ValueError(f"path {p!r} exists and is not a folder: choose another trace path")
            entries = set(os.listdir(p))
            if entries:
                ours = MANIFEST in entries and entries <= {MANIFEST, "steps", "scalars"} | \
                    {e for e in entries if e.startswith(".tmp-")}
                if not ours:
                    raise ValueError(f"path {p!r} is a non-empty folder that is not a numbacnn trace: "
                                     f"choose another trace path")
                if not overwrite:
                    raise ValueError(f"path {p!r} already holds a trace (pass overwrite=True to replace it)")
                for e in entries:
                    full = os.path.join(p, e)
                    shutil.rmtree(full) if os.path.isdir(full) else os.unlink(full)
        os.makedirs(os.path.join(p, "steps"), exist_ok=True)
        os.makedirs(os.path.join(p, "scalars"), exist_ok=True)

    # --- sampling
    @property
    def recording(self) -> bool:
        """True while the current step (the next optimizer step) is one to record."""
        return not self._closed and self.step % self.every == 0

    # --- observer protocol (numbacnn.nn.Sequential)
    def on_forward(self, i, name, layer, x, y):
        if not self.recording or not getattr(self.model, "training", True):
            return  # evaluation passes between steps are not part of the step
        if i == 0:
            self._batch_shape = tuple(x.shape[1:])
        if not self.samples or i not in self._layers:
            return
        self._pending[f"layer/{i}/x"] = _to_host(x, self.samples)
        self._pending[f"layer/{i}/y"] = _to_host(y, self.samples)

    def on_backward(self, i, name, layer, grad_y, grad_x):
        if not self.recording or not self.samples or i not in self._layers:
            return
        self._pending[f"layer/{i}/grad_y"] = _to_host(grad_y, self.samples)
        if grad_x is not None:
            self._pending[f"layer/{i}/grad_x"] = _to_host(grad_x, self.samples)

    # --- the optimizer step
    def _step(self, *args, **kwargs):
        if not self.recording:
            self.step += 1
            return self._orig_step(*args, **kwargs)
        state = getattr(self.optimizer, "state", {})
        rec = self._pending
        if self._probe is not None:  # the parameters the batch's forward used: before the update
            self._record_probe(rec)
        before = {}
        for name, p in self._params:
            before[name] = _to_host(p.data)
            rec[f"param/{name}/value"] = before[name]
            if p.grad is not None:
                rec[f"param/{name}/grad"] = _to_host(p.grad)
            buf = state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                rec[f"param/{name}/momentum_before"] = _to_host(buf)
        result = self._orig_step(*args, **kwargs)
        for name, p in self._params:
            rec[f"param/{name}/value_after"] = _to_host(p.data)
            buf = state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                rec[f"param/{name}/momentum_after"] = _to_host(buf)
        self._submit(self._write_step, self.step, rec, self._take_scalars())
        self._pending = {}
        self.step += 1
        return result

    def _record_probe(self, rec):
        """Run the layers on the probe (no observers called) into rec["probe/<i>/x|y"]; every layer's
        saved input (for backward) is put back afterwards, so the probe leaves no trace in training."""
        probe = self._probe
        if not self._probe_checked:
            if self._batch_shape is not None and tuple(probe.shape[1:]) != self._batch_shape:
                raise ValueError(f"probe has shape {tuple(probe.shape)}: its examples must have the shape of the "
                                 f"training examples {self._batch_shape}")
            if getattr(self.model, "device", "cpu") == "cuda" and not is_device_array(probe):
                from ..cuda import to_device

                probe = self._probe = to_device(probe)  # copied once, reused at every recorded step
        missing = object()
        saved = [(m, vars(m).get("_saved", missing)) for m in self.model.modules()] \
            if hasattr(self.model, "modules") else []
        try:
            x = probe
            for i in range(len(self._layer_names)):
                y = self.model[i].forward(x)
                if i in self._layers:
                    rec[f"probe/{i}/x"] = _to_host(x)
                    rec[f"probe/{i}/y"] = _to_host(y)
                x = y
        except (ValueError, TypeError, IndexError) as exc:
            if self._probe_checked:
                raise
            raise ValueError(f"probe of shape {tuple(probe.shape)} does not fit the model: {exc}") from exc
        finally:
            for m, v in saved:
                if v is missing:
                    m.__dict__.pop("_saved", None)
                else:
                    m._saved = v
        self._probe_checked = True

    # --- scalars
    def log(self, loss=None, acc=None, step=None):
        """Record the loss and accuracy of ``step`` (default: the step just taken by optimizer.step())."""
        step = self.step - 1 if step is None else int(step)
        self._scalars.append((step, np.nan if loss is None else float(loss), np.nan if acc is None else float(acc)))
        if len(self._scalars) >= SCALAR_FLUSH:
            self._submit(self._write_scalars, self._take_scalars(), True)

    def _take_scalars(self):
        rows, self._scalars = self._scalars, []
        return rows

    # --- disk writes: in order, on the writer thread (or inline with background=False)
    def _submit(self, fn, *args):
        if self._error is not None:
            raise TraceError(f"writing the trace {self.path!r} failed: {self._error}") from self._error
        if self._queue is None:
            try:
                fn(*args)
            except Exception as exc:
                self._error = exc
                raise TraceError(f"writing the trace {self.path!r} failed: {exc}") from exc
        else:
            self._queue.put((fn, args))  # blocks while the previous step is still being written

    def _writer(self):
        while True:
            fn, args = self._queue.get()
            try:
                if fn is None:
                    return
                if self._error is None:
                    fn(*args)
            except BaseException as exc:  # reported on the training thread at the next submit / close
                self._error = exc
            finally:
                self._queue.task_done()

    def flush(self):
        """Wait until everything recorded so far is on disk."""
        if self._queue is not None:
            self._queue.join()
        if self._error is not None:
            raise TraceError(f"writing the trace {self.path!r} failed: {self._error}") from self._error

    def _write_manifest(self):
        write_json(os.path.join(self.path, MANIFEST), self.manifest, compact=True)

    def _write_step(self, step, arrays, scalar_rows):
        rel = _step_file(step)
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
        self._write_scalars(scalar_rows, False)
        self._write_manifest()

    def _write_scalars(self, rows, write_manifest):
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
            self._write_manifest()

    def _finish(self, rows, error):
        self._write_scalars(rows, False)
        self.manifest["complete"] = error is None
        if error is not None:
            self.manifest["error"] = error
        self._write_manifest()

    # --- lifecycle
    def close(self, error=None):
        """Detach from the model and optimizer, write what is pending, and mark the trace complete."""
        if self._closed:
            return
        self._closed = True
        try:
            self.model.remove_observer(self)
        except ValueError:
            pass
        if self.optimizer.__dict__.get("step") is self._wrapped:
            del self.optimizer.step
        try:
            self._submit(self._finish, self._take_scalars(), error)
        finally:
            if self._queue is not None:
                self._queue.put((None, ()))
                self._thread.join()
        if self._error is not None:
            raise TraceError(f"writing the trace {self.path!r} failed: {self._error}") from self._error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(None if exc_type is None else f"{exc_type.__name__}: {exc}")
        return False

    def __repr__(self):
        probe = "" if self._probe is None else f", probe={self._probe.shape[0]}"
        return (f"Tracer({self.path!r}, every={self.every}, samples={self.samples}{probe}, step={self.step}, "
                f"recorded={len(self.manifest['steps'])})")


# ----------------------------------------------------------------------------------------------
# Reading


class Trace:
    """A model trace folder read back: the manifest plus query methods; arrays are loaded on demand."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise TraceError(f"{self.path!r} is not a numbacnn trace folder")
        m = read_json(os.path.join(self.path, MANIFEST))
        check_header(m, MODEL_FORMAT, self.path)
        need = ("steps", "step_bytes", "layers", "params", "scalars", "scalar_bytes")
        if not all(isinstance(m.get(k), list) for k in need) or len(m["steps"]) != len(m["step_bytes"]):
            raise TraceError(f"{self.path!r}: the manifest is incomplete or corrupt")
        self.manifest = m
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
        arrays = load_npz(os.path.join(self.path, _step_file(step)), self.manifest["step_bytes"][k])
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
        parts = [load_npz(os.path.join(self.path, rel), n)
                 for rel, n in zip(self.manifest["scalars"], self.manifest["scalar_bytes"])]
        if not parts:
            return {"step": np.zeros(0, np.int64), "loss": np.zeros(0), "acc": np.zeros(0)}
        return {k: np.concatenate([p[k] for p in parts]) for k in ("step", "loss", "acc")}

    def __repr__(self):
        state = "complete" if self.complete else "incomplete"
        return (f"Trace({self.path!r}, {len(self.manifest['steps'])} recorded steps, {len(self.layers)} layers, "
                f"{len(self.params)} params, {state})")
