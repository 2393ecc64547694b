"""What `numbacnn train-lenet` does around the training loop (numbacnn.commands._train_run): output paths checked
before any work, kernels compiled with a message, and progress that also shows in logs (not a terminal)."""
from __future__ import annotations

import os
import sys
import threading
import time

import click

ANNOUNCE_AFTER_S = 1.5  # a warm-up still running after this is compiling (loading cached kernels takes < 1 s)
PLAIN_EVERY_S = 5.0     # not a terminal: a progress line this often
COMPILING = "compiling kernels, first run only..."


class FiniteFloat(click.ParamType):
    """A finite float (``--lr nan`` and ``--lr inf`` are usage errors), at least ``min`` when given."""

    name = "float"

    def __init__(self, min=None):
        self.min = min

    def convert(self, value, param, ctx):
        import math

        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min is not None and v < self.min:
            self.fail(f"{value!r} is below {self.min}", param, ctx)
        return v


SEED = click.IntRange(0, 2**63 - 1)  # NumPy seeds are integers >= 0


def _usage_error(option, path, why):
    from numbacnn.cli import fail

    fail(f"{option} {path}: {why}", 2)


def _check_folder(option, path):
    """The folder that will hold ``path`` exists and takes a new file (numbacnn._paths; nothing is created)."""
    from numbacnn._paths import OutputPathError, check_output_path

    try:
        check_output_path(path)
    except OutputPathError as exc:
        _usage_error(option, path, str(exc))


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _number(v, low=None, integer=False):
    import math

    ok = isinstance(v, int) if integer else isinstance(v, (int, float)) and math.isfinite(v)
    return ok and not isinstance(v, bool) and (low is None or v >= low)


def check_resume_meta(meta, path):
    """CheckpointError (naming ``path`` and the field) unless ``meta`` holds what train-lenet saved: config,
    progress and history of the right types and ranges (a hand-made or damaged checkpoint never reaches training)."""
    from numbacnn.train import CheckpointError

    def bad(field, value):
        raise CheckpointError(f"{path}: not a train-lenet checkpoint: {field} is {value!r:.60}")

    config, progress, history = (meta.get(k) for k in ("config", "progress", "history"))
    for name, v in (("config", config), ("progress", progress), ("history", history)):
        if not isinstance(v, dict):
            bad(name, "missing" if v is None else v)
    rules = {"variant": lambda v: v in ("d2l", "modern"), "init": lambda v: v in ("xavier", "default"),
             "seed": lambda v: _number(v, 0, True), "batch_size": lambda v: _number(v, 1, True),
             "limit": lambda v: v is None or _number(v, 1, True), "lr": lambda v: _number(v, 0),
             "momentum": lambda v: _number(v, 0), "dampening": _number, "weight_decay": lambda v: _number(v, 0),
             "nesterov": lambda v: isinstance(v, bool)}
    for key, ok in rules.items():
        if not ok(config.get(key)):
            bad(f"config.{key}", config.get(key))
    for key in ("epoch", "batch", "correct", "seen"):
        if not _number(progress.get(key), 0, True):
            bad(f"progress.{key}", progress.get(key))
    for key in ("loss_sum", "train_seconds"):
        if not _number(progress.get(key, 0.0), 0):
            bad(f"progress.{key}", progress.get(key))
    lengths = set()
    for key in ("train_loss", "train_acc", "test_acc"):
        v = history.get(key)
        if not isinstance(v, list) or not all(_number(e) for e in v):
            bad(f"history.{key}", v)
        lengths.add(len(v))
    if len(lengths) != 1:
        bad("history", "lists of different lengths")


def read_resume(path):
    """(model state, optimizer state, meta) of the --resume checkpoint, checked; a bad one ends the command."""
    from numbacnn.cli import fail
    from numbacnn.train import CheckpointError, read_checkpoint

    try:
        model_state, optim_state, meta = read_checkpoint(path)
        check_resume_meta(meta, path)
    except CheckpointError as exc:
        fail(f"--resume {path}: {exc}")
    return model_state, optim_state, meta


def check_outputs(plot, save, trace_path, resume, overwrite):
    """Check --plot, --save and --trace before the data loads; a bad one ends the command (exit 2).

    Existing checkpoints and traces are kept unless ``overwrite``; ``--save`` onto the checkpoint being resumed
    is the point of --resume and needs no --overwrite.
    """
    given = [(o, p) for o, p in (("--plot", plot), ("--save", save), ("--trace", trace_path)) if p is not None]
    for i, (o1, p1) in enumerate(given):
        for o2, p2 in given[i + 1:]:
            if os.path.abspath(p1) == os.path.abspath(p2) or _same_file(p1, p2):
                _usage_error(o2, p2, f"is also the {o1} path: give each output its own file")
    if plot is not None:
        ext = os.path.splitext(plot)[1].lower().lstrip(".")
        if ext:
            from matplotlib.backend_bases import FigureCanvasBase

            kinds = FigureCanvasBase.get_supported_filetypes()
            if ext not in kinds:
                _usage_error("--plot", plot, f"matplotlib cannot write .{ext} images; use one of "
                             f"{', '.join('.' + k for k in sorted(kinds))}")
        if os.path.isdir(plot):
            _usage_error("--plot", plot, "is a folder; give an image file name such as curves.png")
        _check_folder("--plot", plot)
    if save is not None:
        if os.path.isdir(save):
            _usage_error("--save", save, "is a folder; give a file name such as lenet.npz")
        _check_folder("--save", save)
        if os.path.exists(save) and not overwrite and not (resume is not None and _same_file(save, resume)):
            _usage_error("--save", save, f"the file exists: pass --overwrite to replace it, or continue that run "
                                         f"with --resume {save} --save {save}")
    if trace_path is not None:
        from numbacnn.trace.writer import check_folder

        if not os.path.exists(trace_path):
            _check_folder("--trace", trace_path)
        else:
            _check_writable_folder(trace_path)
        try:
            check_folder(trace_path, overwrite, resume is not None)
        except ValueError as exc:
            if "already holds a trace" not in str(exc):
                _usage_error("--trace", trace_path, str(exc).replace(f"path {trace_path!r} ", ""))
            _usage_error("--trace", trace_path, f"already holds a trace: give another path, pass --overwrite to "
                                                f"replace it, or --resume CHECKPOINT to continue that run and its "
                                                f"trace")


def _check_writable_folder(path):
    """An existing --trace folder must take new files (a read-only folder would fail after the data loads)."""
    import tempfile

    from numbacnn._io import TMP_PREFIX

    if not os.path.isdir(path):
        return  # check_folder names it
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=TMP_PREFIX, suffix=".probe")
    except OSError as exc:
        _usage_error("--trace", path, f"files cannot be created in it ({exc.strerror or exc})")
    os.close(fd)
    os.unlink(probe)


# The warm-up step runs on a batch of the training's batch size, at most this many examples: the kernels choose by
# whether a batch fills a tile of examples (16 float32), and a bigger stand-in would only cost memory.
WARM_MOST = 64


def _warm_job(build, device, x, y, sgd_options, batch_size):
    """The job that compiles (or loads) the training kernels: a training step and a forward of a throwaway model
    from ``build()`` on the first min(batch_size, WARM_MOST) examples of (x, y), so that the kernels are those a
    training batch takes (numbacnn.train.warm_up; the real model and optimizer are not touched)."""
    from numbacnn.optim import SGD
    from numbacnn.train import warm_up

    n = min(batch_size, WARM_MOST)

    def warm():
        scratch = build().to(device)
        warm_up(scratch, x[:n], y[:n], SGD(scratch.parameters(), **sgd_options))
    return warm


def start_compiling(build, device, sgd_options, batch_size):
    """On the CPU, start compiling the kernels that training needs and Numba's cache lacks, in forked workers
    (numbacnn._precompile), so they compile while the data loads; say so on stderr when there are any.
    Returns the handle for ``warm_kernels`` (None: nothing to start). The stand-in examples have the types of
    numbacnn.data's arrays (float32 images (N, 1, 28, 28), int64 labels), which is all the kernels compile for."""
    if device != "cpu":
        return None
    import numpy as np

    from numbacnn._precompile import start

    n = min(batch_size, WARM_MOST)
    job = _warm_job(build, device, np.zeros((n, 1, 28, 28), np.float32), np.zeros(n, np.int64), sgd_options, n)
    compiling = start(job, helping=True)  # one process per core: this one joins in once the data is loaded
    if not compiling.missing:
        return None
    click.echo(COMPILING, err=True)
    return compiling


def warm_kernels(build, device, x, y, sgd_options, batch_size, compiling=None):
    """Compile (or load from Numba's cache) the training kernels on a throwaway model from ``build()``, after
    ``compiling`` (from ``start_compiling``, which said so on stderr) is done, this process helping with what is
    left; the real model and optimizer are not touched (numbacnn.train.warm_up).

    Without ``compiling``, a warm-up that takes more than ANNOUNCE_AFTER_S is compiling: say so on stderr while it
    runs. Either way, say how long the compiling took. Nothing to compile for the simulator.
    """
    if device == "cudasim" or (device == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"):
        return
    warm = _warm_job(build, device, x, y, sgd_options, batch_size)
    shown = []

    def announce():
        shown.append(True)
        click.echo(COMPILING, err=True)

    t0 = compiling.started if compiling is not None else time.perf_counter()
    timer = threading.Timer(ANNOUNCE_AFTER_S, announce)
    timer.daemon = True
    if compiling is None:
        timer.start()
    try:
        if compiling is not None:
            compiling.join()
        warm()
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
    if compiling is not None or shown:
        click.echo(f"compiling kernels: done in {time.perf_counter() - t0:.0f} s (not counted in examples/sec)",
                   err=True)


class StopAfterBatch:
    """Ctrl-C (SIGINT) and SIGTERM while a batch trains: stop once its update and its bookkeeping are both done,
    so the checkpoint saved on the way out matches the weights and a resumed run continues exactly; a second
    signal stops at once (``applied`` then tells how many updates the bookkeeping missed). Outside ``batches()``
    a signal stops at once, as usual. Use as a context manager (the previous handlers are put back)."""

    def __init__(self, optimizer):
        self.pending = self.active = False
        self.applied = 0  # optimizer steps taken since the start (a step post-hook counts them)
        self._hook = optimizer.register_step_post_hook(self._count)
        self._previous = {}

    def _count(self, *args):
        self.applied += 1

    def _handler(self, signum, frame):
        if self.active and not self.pending:
            self.pending = True
            click.echo("\nstopping after this batch (press Ctrl-C again to stop at once)", err=True)
            return
        raise KeyboardInterrupt

    def __enter__(self):
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: signals keep their handlers
                pass
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._hook.remove()
        return False

    def check(self):
        """Call after a batch's bookkeeping: KeyboardInterrupt when a signal came during the batch."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class PlainProgress:
    """Progress for a log (stderr is not a terminal): the label, then a line every PLAIN_EVERY_S seconds."""

    def __init__(self, length, label, describe):
        self.length, self.label, self.describe = length, label, describe
        self.pos = 0
        self._t0 = self._last = time.perf_counter()

    def __enter__(self):
        click.echo(self.label, err=True)
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        self.pos += n
        now = time.perf_counter()
        if n and now - self._last >= PLAIN_EVERY_S and self.pos < self.length:
            self._last = now
            click.echo(f"{self.label} batch {self.pos}/{self.length} ({100 * self.pos // self.length}%, "
                       f"{now - self._t0:.0f} s): {self.describe()}", err=True)


def progress_bar(length, label, describe):
    """click's progress bar on a terminal; PlainProgress (``describe()`` says how it goes) anywhere else."""
    if sys.stderr.isatty():
        return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)
    return PlainProgress(length, label, describe)
