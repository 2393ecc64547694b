"""Recording model-level traces (numbacnn.trace.model): what a ``numbacnn.nn.Sequential`` and its SGD optimizer
computed, streamed to disk.

``Tracer(model, optimizer, path)`` attaches as an observer of the model and subscribes to the optimizer's step
hooks (``register_step_pre_hook`` / ``register_step_post_hook``); nothing is patched, and ``close()`` unsubscribes.
Step s (counted in optimizer steps, from 0) is recorded when ``s % every == 0``: for the first ``samples``
examples of the batch, every chosen layer's input / output and the gradients flowing back through it,
and for every chosen parameter its value, gradient, momentum buffer before and after, and the update applied.
With ``probe=`` (fixed examples (N, C, H, W), e.g. the first test images) each recorded step also runs the
model forward on the probe, with the parameters the batch used (in the step pre-hook, before the update),
so one image can be followed across training; the probe forward leaves training untouched.
The loss and accuracy of every step (recorded or not) come from ``numbacnn.train.train_batch`` / ``train_step``,
which hand them to the model's observers (``on_scalars``); ``tracer.log(loss=..., acc=...)`` records them for a
loop of one's own, and a second value for the same step replaces the first (one row per step).

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
chunk is only ever listed (and loaded) once it is whole. Temporary files are named ``.numbacnn-tmp.*``
(``numbacnn._io.is_temp_name``): a killed run leaves at most one or two, which readers never look at and the
next Tracer on the folder removes. ``Tracer(..., resume=True, start_step=s)`` continues a trace (a resumed run),
dropping what was recorded from step s on. Reading treats every file as untrusted (``numbacnn.trace.manifest``).

Siblings: ``numbacnn.trace.writer`` (the disk side: folder, manifest, chunks, writer thread),
``numbacnn.trace.reader`` (``Trace``, ``load``: reading it back), ``numbacnn.trace.format`` (names and files).
"""
from __future__ import annotations

import datetime as _dt
import os

import numpy as np

from .._checks import is_device_array
from .._host_copy import to_numpy
from .format import MODEL_FORMAT, VERSION, jsonable
from .writer import TraceWriter, continue_manifest, prepare_folder

DEFAULT_EVERY = 50    # 10 epochs of LeNet at batch 256 (2350 steps) -> 47 recorded steps, about 100 MB
DEFAULT_SAMPLES = 4
SCALAR_FLUSH = 4096   # logged scalars held in memory at most before they are written out


def _version():
    import numbacnn

    return numbacnn.__version__


def _same_run(path, old, new, same):
    """ValueError unless the trace manifest ``old`` records what ``new`` would (sampling, parameters, layers and
    the hyperparameters named in ``same``): a resumed run continues only its own trace."""
    checks = [(f"sampling {k}", old["sampling"].get(k, 0 if k == "probe" else None), new["sampling"][k])
              for k in ("every", "samples", "layers", "params", "probe")]
    checks.append(("parameters", [(e["name"], e["shape"]) for e in old["params"]],
                   [(e["name"], e["shape"]) for e in new["params"]]))
    checks.append(("layers", [(e["index"], e.get("type")) for e in old["layers"]],
                   [(e["index"], e["type"]) for e in new["layers"]]))
    checks += [(k, old.get("hyperparameters", {}).get(k), new["hyperparameters"].get(k)) for k in same]
    for what, was, now in checks:
        if was != now:
            raise ValueError(f"path {path!r} holds a trace of another run ({what} {was!r} there, {now!r} here): "
                             f"give another trace path, or pass overwrite=True to replace it")


class Tracer:
    """Record a training run of ``model`` (a ``numbacnn.nn.Sequential``) and ``optimizer`` into ``path``.

    every: record steps 0, every, 2*every, ...; samples: examples of the batch kept per feature map
    (0: parameters only); layers / params: indices or names to keep (None: all); meta: extra JSON-able
    hyperparameters (batch size, epochs, ...); start_step: the first step's number (resumed runs);
    background: write files on a writer thread (one step in flight at most) instead of inline;
    probe: fixed examples (N, C, H, W) (NumPy, or a device array for a CUDA model) run forward at every
    recorded step before the update, recorded as probe/<i>/x and probe/<i>/y (``Trace.probe_map``).
    overwrite: replace a trace already at ``path`` (default: yes, unless ``resume``); resume: continue it
    instead (a resumed run: steps from
    ``start_step`` on, recorded after the checkpoint, are dropped; ``same`` names hyperparameters that must match
    the trace's, and the sampling and parameters must match too). Neither: ValueError when ``path`` holds a trace.
    Use as a context manager, or call ``close()``. Loss and accuracy: ``numbacnn.train.train_batch`` reports them
    (``on_scalars``); call ``log(loss=..., acc=...)`` after each step of a loop of one's own.
    """

    def __init__(self, model, optimizer, path, every=DEFAULT_EVERY, samples=DEFAULT_SAMPLES, layers=None,
                 params=None, *, meta=None, start_step=0, overwrite=None, background=True, probe=None, resume=False,
                 same=()):
        if not hasattr(model, "add_observer"):
            raise TypeError(f"model must be a numbacnn.nn.Sequential (with add_observer), got {type(model).__name__}")
        if not all(callable(getattr(optimizer, f"register_step_{when}_hook", None)) for when in ("pre", "post")):
            raise TypeError(f"optimizer must have register_step_pre_hook and register_step_post_hook "
                            f"(as numbacnn.optim.SGD has), got {type(optimizer).__name__}")
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
        self._recording_step = False  # what the pre-hook found, for the post-hook of the same step
        self._scalars = []  # (step, loss, acc)
        self._closed = False
        mode = prepare_folder(self.path, not resume if overwrite is None else overwrite, resume)
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
        chunk, obsolete = 0, ()
        if mode == "continue":
            self.manifest, obsolete, chunk = self._continued(same)
        self._writer = TraceWriter(self.path, self.manifest, background=background, scalar_chunk=chunk,
                                   obsolete=obsolete)
        self._hook_handles = ()
        self._attach()

    def _continued(self, same):
        """The manifest of the trace at ``self.path``, trimmed to the steps before ``self.step``
        (``continue_manifest``) and checked first to record what this tracer records (``_same_run``)."""
        new = self.manifest
        old, obsolete, chunk = continue_manifest(self.path, self.step, lambda m: _same_run(self.path, m, new, same))
        old["hyperparameters"] = dict(old.get("hyperparameters", {}), **new["hyperparameters"])
        return old, obsolete, chunk

    def _attach(self):
        """Observe the model's layers and subscribe to the optimizer's step hooks."""
        self.model.add_observer(self)
        self._hook_handles = (self.optimizer.register_step_pre_hook(self._before_step),
                              self.optimizer.register_step_post_hook(self._after_step))

    def _detach(self):
        """Stop observing the model and unsubscribe from the optimizer (nothing of the tracer is left there)."""
        try:
            self.model.remove_observer(self)
        except ValueError:
            pass
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles = ()

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
        """The probe as a float32 (N, C, H, W) array (host, or on the device for a CUDA model), or None."""
        if probe is None:
            return None
        on_device = is_device_array(probe) or hasattr(probe, "copy_to_host")
        if not on_device:
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
        if on_device:
            if getattr(self.model, "device", "cpu") != "cuda":
                probe = to_numpy(probe)
            elif np.dtype(probe.dtype) != np.float32:
                raise ValueError(f"probe on the device must be float32, got {probe.dtype}")
        if not on_device or getattr(self.model, "device", "cpu") != "cuda":
            probe = np.array(probe, dtype=np.float32, order="C", copy=True)  # as training feeds the model
        return probe

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
        self._pending[f"layer/{i}/x"] = to_numpy(x, self.samples)
        self._pending[f"layer/{i}/y"] = to_numpy(y, self.samples)

    def on_backward(self, i, name, layer, grad_y, grad_x):
        if not self.recording or not self.samples or i not in self._layers:
            return
        self._pending[f"layer/{i}/grad_y"] = to_numpy(grad_y, self.samples)
        if grad_x is not None:
            self._pending[f"layer/{i}/grad_x"] = to_numpy(grad_x, self.samples)

    # --- the optimizer's step hooks
    def _before_step(self, optimizer, args, kwargs):
        """Step pre-hook: on a recorded step, the probe, and every parameter, gradient and buffer before the update."""
        self._recording_step = self.recording
        if not self._recording_step:
            return
        state = getattr(optimizer, "state", {})
        rec = self._pending
        if self._probe is not None:  # the parameters the batch's forward used: before the update
            self._record_probe(rec)
        for name, p in self._params:
            rec[f"param/{name}/value"] = to_numpy(p.data)
            if p.grad is not None:
                rec[f"param/{name}/grad"] = to_numpy(p.grad)
            buf = state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                rec[f"param/{name}/momentum_before"] = to_numpy(buf)

    def _after_step(self, optimizer, args, kwargs):
        """Step post-hook: on a recorded step, the parameters and buffers after the update, sent to disk;
        then the step count moves on."""
        if self._recording_step:
            state = getattr(optimizer, "state", {})
            rec = self._pending
            for name, p in self._params:
                rec[f"param/{name}/value_after"] = to_numpy(p.data)
                buf = state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    rec[f"param/{name}/momentum_after"] = to_numpy(buf)
            self._writer.submit(self._writer.write_step, self.step, rec, self._take_scalars())
            self._pending = {}
        self._recording_step = False
        self.step += 1

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
                    rec[f"probe/{i}/x"] = to_numpy(x)
                    rec[f"probe/{i}/y"] = to_numpy(y)
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
        """Record the loss and accuracy of ``step`` (default: the step just taken by optimizer.step()).

        Logging the step of the previous call again replaces what it gave (a value left None is kept), so
        ``train_batch``'s own report followed by an explicit ``log`` still gives one row per step.
        """
        if self._closed:
            return
        step = self.step - 1 if step is None else int(step)
        row = (step, np.nan if loss is None else float(loss), np.nan if acc is None else float(acc))
        if self._scalars and self._scalars[-1][0] == step:
            last = self._scalars.pop()
            row = (step, last[1] if loss is None else row[1], last[2] if acc is None else row[2])
        self._scalars.append(row)
        if len(self._scalars) > SCALAR_FLUSH:  # all but the last row, which a log of the same step may replace
            rows, self._scalars = self._scalars[:-1], self._scalars[-1:]
            self._writer.submit(self._writer.write_scalars, rows, True)

    def on_scalars(self, loss=None, acc=None, **others):
        """Observer hook (``numbacnn.train.report_scalars``): ``log`` the step's loss and accuracy; other
        scalars (``test_acc`` from ``evaluate``) are not part of a trace."""
        if loss is not None or acc is not None:
            self.log(loss=loss, acc=acc)

    def _take_scalars(self):
        rows, self._scalars = self._scalars, []
        return rows

    def flush(self):
        """Wait until everything recorded so far is on disk."""
        self._writer.flush()

    # --- lifecycle
    def close(self, error=None):
        """Detach from the model and optimizer, write what is pending, and mark the trace complete."""
        if self._closed:
            return
        self._closed = True
        self._detach()
        try:
            self._writer.submit(self._writer.finish, self._take_scalars(), error)
        finally:
            self._writer.close()
        self._writer.flush()  # raises TraceError when a write failed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(None if exc_type is None else f"{exc_type.__name__}: {exc}")
        return False

    def __repr__(self):
        probe = "" if self._probe is None else f", probe={self._probe.shape[0]}"
        return (f"Tracer({self.path!r}, every={self.every}, samples={self.samples}{probe}, step={self.step}, "
                f"recorded={len(self.manifest['steps'])})")
