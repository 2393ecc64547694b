"""Training loop pieces (numbacnn.train), D2L 6.6's ``train_ch6`` for scripts: one step, one epoch, accuracy,
checkpoints.

Images are float arrays (N, 1, 28, 28), labels integer arrays (N,). When the model lives on the GPU
(``model.to("cuda")``) each batch is copied there; only the loss and the logits come back.
The loss and accuracy that ``train_batch`` / ``train_step`` / ``evaluate`` compute are handed to the model's
observers that have an ``on_scalars`` method (``numbacnn.trace.Tracer`` records them), so a traced run needs no
extra call.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import speedups
from ._host_copy import to_numpy
from ._threads import choice_for
from .functional import check_labels
from .nn import CrossEntropyLoss, Sequential
from .speedups import keep_freed_memory


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the weights were not updated by that step."""

    def __init__(self, loss, step=None):
        self.loss, self.step = loss, step
        where = "" if step is None else f" at step {step}"
        super().__init__(f"the loss became {loss}{where}; training stopped before the update. "
                         f"Try a smaller learning rate (--lr).")


def _to_model(model, x):
    """The batch as float32, on the model's device."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if model.device == "cuda":
        from .cuda import to_device
        return to_device(x)
    return x


def _observers(model):
    """The model's observers (``numbacnn.nn.Sequential.observers``); none for models without them."""
    return getattr(model, "observers", ())


def report_scalars(model, **scalars):
    """``obs.on_scalars(**scalars)`` for each observer of ``model`` that has it.

    train_batch passes ``loss=`` and ``acc=``, evaluate ``test_acc=``: an observer's ``on_scalars`` should take
    ``**others`` for names it does not use (as ``numbacnn.trace.Tracer.on_scalars`` does).
    """
    for obs in _observers(model):
        on_scalars = getattr(obs, "on_scalars", None)
        if callable(on_scalars):
            on_scalars(**scalars)


def _check_batch(x, y):
    if np.ndim(x) < 2:
        raise ValueError(f"x must be a batch of examples (N, ...), got shape {np.shape(x)}")
    if np.shape(y)[:1] != np.shape(x)[:1]:
        raise ValueError(f"y must hold one label per example: x has {np.shape(x)[0]} examples, y has shape "
                         f"{np.shape(y)}")


def train_batch(model, optimizer, x, y, loss_fn=None):
    """Forward, cross-entropy, backward, optimizer step on one batch -> (loss: float, number correct: int).

    Raises NonFiniteLossError (before any update) when the loss is NaN or infinite. After the step, the model's
    observers get ``on_scalars(loss=..., acc=...)`` (``report_scalars``). On the CPU the step runs on Numba's
    threads or on one, whichever has been faster lately (numbacnn._threads; the same numbers either way).
    """
    _check_batch(x, y)
    keep_freed_memory()  # numbacnn.speedups: the step's arrays reuse freed memory, not fresh pages
    if model.device != "cpu" or not speedups.enabled():
        return _train_batch(model, optimizer, x, y, loss_fn)
    import numba

    most = numba.get_num_threads()  # numbacnn._threads: this step on `most` threads or one, the faster lately
    choice = choice_for(model)
    threads = choice.pick(most)
    numba.set_num_threads(threads)
    start = time.perf_counter()
    try:
        result = _train_batch(model, optimizer, x, y, loss_fn)
    finally:
        numba.set_num_threads(most)
    choice.record(threads, time.perf_counter() - start, len(x))
    return result


def _train_batch(model, optimizer, x, y, loss_fn):
    loss_fn = CrossEntropyLoss() if loss_fn is None else loss_fn
    xb = _to_model(model, x)
    logits = model.forward(xb)
    y = np.asarray(y)
    labels = check_labels((len(y), logits.shape[1]), y, "y")
    loss = float(to_numpy(loss_fn(logits, labels)))
    if not math.isfinite(loss):
        raise NonFiniteLossError(loss)
    optimizer.zero_grad()
    if isinstance(model, Sequential):  # the images need no gradient: skip the first conv's input gradient
        model.backward(loss_fn.backward(1.0), need_grad_x=False)
    else:
        model.backward(loss_fn.backward(1.0))
    optimizer.step()
    correct = int((to_numpy(logits).argmax(axis=1) == labels).sum())
    report_scalars(model, loss=loss, acc=correct / len(labels))
    return loss, correct


def train_step(model, optimizer, x, y) -> float:
    """One SGD step on the batch (x, y); returns the batch's mean cross-entropy loss."""
    return train_batch(model, optimizer, x, y)[0]


def predict(model, x, batch_size: int = 1000) -> np.ndarray:
    """Predicted class (N,) for each example, in batches of ``batch_size``."""
    out = []
    for start in range(0, len(x), batch_size):
        logits = model.forward(_to_model(model, x[start:start + batch_size]))
        out.append(to_numpy(logits).argmax(axis=1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate(model, x, y, batch_size: int = 1000) -> float:
    """Accuracy of the model on (x, y): the fraction of examples whose largest logit is the label.

    The model's observers get ``on_scalars(test_acc=...)`` (a Tracer ignores it: a trace's acc is the training
    batch's).
    """
    _check_batch(x, y)
    if len(x) == 0:
        raise ValueError("evaluate needs at least one example, got 0")
    acc = float((predict(model, x, batch_size) == np.asarray(y)).mean())
    report_scalars(model, test_acc=acc)
    return acc


def warm_up(model, x, y, optimizer=None):
    """Compile (or load from Numba's cache) the kernels that training ``model`` runs, on the examples (x, y).

    ``model`` must be a throwaway copy (it is changed): forward, cross-entropy and backward run on it, and
    ``optimizer``'s step when given (an optimizer of that copy). Nothing else is touched, so a run that warms up
    first computes exactly the same numbers. Sixteen examples are enough: kernels compile per dtype and layout,
    and only conv's backward picks by batch size (a tile of examples: 16 float32, 8 float64, or fewer). Its
    observers get nothing (no ``on_scalars``).
    """
    _check_batch(x, y)
    loss_fn = CrossEntropyLoss()
    logits = model.forward(_to_model(model, x))
    labels = check_labels((len(y), logits.shape[1]), np.asarray(y), "y")
    to_numpy(loss_fn(logits, labels))
    if optimizer is not None:
        optimizer.zero_grad()
    if isinstance(model, Sequential):
        model.backward(loss_fn.backward(1.0), need_grad_x=False)
    else:
        model.backward(loss_fn.backward(1.0))
    if optimizer is not None:
        optimizer.step()
    to_numpy(model.forward(_to_model(model, x))).argmax(axis=1)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of one epoch: a permutation of range(n) fixed by (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_slices(n: int, batch_size: int):
    """[(start, stop)] covering range(n) in batches (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def train_epoch(model, optimizer, x, y, *, batch_size=256, seed=0, epoch=0, start_batch=0, on_batch=None):
    """One epoch over (x, y) shuffled by (seed, epoch), from batch ``start_batch`` on.

    ``on_batch(i, loss, correct, n)`` is called after each batch. Returns (loss sum, correct, examples),
    where the loss sum weights each batch's mean loss by its size (as the book's Accumulator does).
    """
    order = epoch_order(len(x), seed, epoch)
    total = correct_total = seen = 0
    for i, (s, e) in enumerate(batch_slices(len(x), batch_size)):
        if i < start_batch:
            continue
        idx = order[s:e]
        try:
            loss, correct = train_batch(model, optimizer, x[idx], y[idx])
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(exc.loss, step=i + 1) from None
        total += loss * (e - s)
        correct_total += correct
        seen += e - s
        if on_batch is not None:
            on_batch(i, loss, correct, e - s)
    return total, correct_total, seen


# ----------------------------------------------------------------------------------------------
# Checkpoints: weights, optimizer state and any JSON metadata in one .npz (no pickle), written atomically; read
# back as untrusted input (CheckpointError naming the file and the field for anything damaged or hand-made).

CHECKPOINT_FORMAT = "numbacnn-checkpoint-1"


def save_checkpoint(path, model, optimizer=None, meta=None):
    """Write ``model/<name>`` arrays, ``optim/momentum_buffer/<i>`` arrays and a JSON ``meta`` string to ``path``.

    The file appears complete or not at all (temporary file + os.replace), so an interrupted save
    leaves the previous checkpoint readable. Its folder must exist (FileNotFoundError naming it otherwise).
    """
    import json
    from pathlib import Path

    from ._io import atomic_path

    payload = {f"model/{k}": v for k, v in model.state_dict().items()}
    info = {"format": CHECKPOINT_FORMAT, "meta": meta or {}, "optimizer": None}
    if optimizer is not None:
        state = optimizer.state_dict()
        for i, b in enumerate(state["momentum_buffers"]):
            if b is not None:
                payload[f"optim/momentum_buffer/{i}"] = to_numpy(b)
        info["optimizer"] = {"defaults": state["defaults"], "n_params": len(state["momentum_buffers"])}
    payload["__meta__"] = np.array(json.dumps(info))
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save the checkpoint {path}: the folder {path.parent} does not exist")
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as f:
        np.savez(f, allow_pickle=False, **payload)
    return path


class CheckpointError(ValueError):
    """A file that is not a numbacnn checkpoint, is damaged, or does not fit the model; the message names the file
    and the field."""


MAX_PARAMS = 10_000  # optimizer entries a checkpoint may list (LeNet has 10)


def read_checkpoint(path):
    """(model state dict, optimizer state dict or None, meta dict) from a file written by save_checkpoint.

    The file is untrusted: every array's header is checked before it is read (``numbacnn._npz``, no pickle) and
    every field's type; CheckpointError (a ValueError) names the file and what is wrong.
    """
    import json

    from ._npz import read_npz

    arrays = read_npz(path, CheckpointError, "numbacnn checkpoint")

    def bad(why):
        raise CheckpointError(f"{path}: not a usable numbacnn checkpoint: {why}")

    if "__meta__" not in arrays:
        bad("no __meta__ entry")
    try:
        info = json.loads(str(arrays["__meta__"]))
    except (ValueError, RecursionError) as exc:
        bad(f"its __meta__ entry is not JSON ({exc})")
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise CheckpointError(f"{path} has format {found!r}, expected {CHECKPOINT_FORMAT!r}")
    meta = info.get("meta", {})
    if not isinstance(meta, dict):
        bad(f"meta must be an object, got {type(meta).__name__}")
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    for k, v in arrays.items():
        if k.startswith(("model/", "optim/")) and (v.dtype.kind != "f" or not np.isfinite(v).all()):
            bad(f"{k} must hold finite floats, got {v.dtype}" + (" with NaN or inf" if v.dtype.kind == "f" else ""))
    opt = info.get("optimizer")
    optim_state = None
    if opt is not None:
        n = opt.get("n_params") if isinstance(opt, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_PARAMS:
            bad(f"optimizer.n_params must be an int in 0..{MAX_PARAMS}, got {n!r:.40}")
        if not isinstance(opt.get("defaults"), dict):
            bad("optimizer.defaults must be an object")
        bufs = {}
        for k, v in arrays.items():
            if k.startswith("optim/momentum_buffer/"):
                i = k.rsplit("/", 1)[1]
                if not i.isdigit() or int(i) >= n:
                    bad(f"{k} is not a momentum buffer of one of its {n} parameters")
                bufs[int(i)] = v
        optim_state = {"defaults": opt["defaults"], "momentum_buffers": [bufs.get(i) for i in range(n)]}
    return model_state, optim_state, meta


def check_optimizer_state(optimizer, state, path="the checkpoint"):
    """CheckpointError (naming ``path``) unless ``state`` holds one momentum buffer (or None) per parameter of
    ``optimizer``, each with the parameter's shape and dtype: a kernel must never be handed a buffer that it would
    write past the end of, or one whose dtype would silently change the momentum."""
    bufs = state["momentum_buffers"]
    params = list(optimizer.params)
    if len(bufs) != len(params):
        raise CheckpointError(f"{path}: its optimizer state has {len(bufs)} momentum buffers, the model has "
                              f"{len(params)} parameters")
    for i, (b, p) in enumerate(zip(bufs, params)):
        if b is None:
            continue
        want = np.dtype(getattr(p, "dtype", np.float32))
        if tuple(b.shape) != tuple(p.shape) or np.dtype(b.dtype) != want:
            raise CheckpointError(f"{path}: momentum buffer {i} has shape {tuple(b.shape)} and dtype {b.dtype}; "
                                  f"parameter {i} needs shape {tuple(p.shape)}, {want}")


def load_optimizer_state(optimizer, state, device="cpu", path="the checkpoint"):
    """optimizer.load_state_dict(state) with momentum buffers copied to ``device`` ("cpu" or "cuda"), after
    ``check_optimizer_state`` (CheckpointError naming ``path`` when a buffer does not fit its parameter)."""
    check_optimizer_state(optimizer, state, path)
    bufs = state["momentum_buffers"]
    if device == "cuda":
        from .cuda import to_device
        bufs = [None if b is None else to_device(np.ascontiguousarray(b)) for b in bufs]
    else:
        bufs = [None if b is None else np.array(b, copy=True) for b in bufs]
    optimizer.load_state_dict({"defaults": state["defaults"], "momentum_buffers": bufs})
