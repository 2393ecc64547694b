"""`numbacnn train-lenet` (numbacnn.commands.train_lenet): D2L 6.6, LeNet on Fashion-MNIST with numbacnn's kernels."""
from __future__ import annotations

import os
import sys
import time

import click

from ._common import DownloadBars, device_option
from ._train_run import (SEED, FiniteFloat, StopAfterBatch, check_outputs, progress_bar, read_resume, start_compiling,
                         warm_kernels)

# Options that define the model and the data order: a resumed run must keep them.
FIXED_ON_RESUME = ("variant", "init", "seed", "batch_size", "limit")
OPTIM_OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "nesterov")


def plot_curves(history, path):
    """Write train loss, train acc and test acc per epoch (the book's live plot) to ``path``, atomically.

    matplotlib is imported here, with the Agg canvas and no pyplot state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = list(range(1, len(history["train_loss"]) + 1))
    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, history["train_loss"], "-", label="train loss")
    ax.plot(epochs, history["train_acc"], "m--", label="train acc")
    ax.plot(epochs, history["test_acc"], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(1, max(len(epochs), 2))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from numbacnn._io import atomic_path

    suffix = os.path.splitext(path)[1] or ".png"
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, format=suffix[1:])


def _continued_sampling(ctx, trace_path, every, samples):
    """--trace-every and --trace-samples of a continued trace: the trace's own, unless given on the command line."""
    from numbacnn.cli import fail
    from numbacnn.trace import Trace, TraceError

    try:
        sampling = Trace(trace_path).manifest["sampling"]
    except TraceError as exc:
        fail(f"--trace {trace_path}: cannot continue it: {exc} (pass --overwrite to replace it)", 2)
    explicit = {k for k in ("trace_every", "trace_samples")
                if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    return (every if "trace_every" in explicit else sampling["every"],
            samples if "trace_samples" in explicit else sampling["samples"])


def _device_label(device):
    if device == "cpu":
        return "cpu"
    if device == "cudasim":
        return "cudasim (Numba's CUDA simulator)"
    try:
        from numba import cuda

        name = cuda.get_current_device().name
        return f"cuda:0 ({name.decode() if isinstance(name, bytes) else name})"
    except Exception:  # pragma: no cover - name lookup is cosmetic
        return "cuda"


@click.command("train-lenet")
@device_option(help="Device the kernels run on: cpu, cuda or cudasim (Numba's CUDA simulator, tiny runs only). "
                    "--target is the old name.")
@click.option("--variant", type=click.Choice(["d2l", "modern"]), default="d2l", show_default=True,
              help="d2l: the book's sigmoid + average pooling; modern: ReLU + max pooling.")
@click.option("--init", "init", type=click.Choice(["xavier", "default"]), default="xavier", show_default=True,
              help="Weight initialisation: Xavier-uniform (the book) or PyTorch's default.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Total epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--lr", type=FiniteFloat(min=0), default=0.9, show_default=True, help="Learning rate.")
@click.option("--momentum", type=FiniteFloat(min=0), default=0.0, show_default=True)
@click.option("--dampening", type=FiniteFloat(), default=0.0, show_default=True)
@click.option("--weight-decay", type=FiniteFloat(min=0), default=0.0, show_default=True)
@click.option("--nesterov", is_flag=True, help="Nesterov momentum (needs --momentum > 0 and no dampening).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the weights and the shuffling.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N training and N test examples (quick runs).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the four Fashion-MNIST IDX files (searched first).")
@click.option("--download/--no-download", default=True, show_default=True,
              help="Download the data into the user cache when no copy is found.")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the training curves to this image (e.g. curves.png) after each epoch.")
@click.option("--save", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Save weights, optimizer state and settings (.npz) after each epoch and on Ctrl-C. An existing "
                   "file is kept unless --overwrite, or unless it is the --resume checkpoint (continued in place).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue a run saved with --save (--resume X --save X keeps saving to X).")
@click.option("--trace", "trace_path", type=click.Path(), default=None,
              help="Record feature maps, gradients and SGD steps to this trace folder (e.g. run.nctrace). An "
                   "existing trace is kept unless --overwrite; with --resume, the run continues the trace there (steps "
                   "recorded after the checkpoint are dropped) or starts one.")
@click.option("--trace-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="With --trace: record every N-th step (loss and accuracy are logged every step).")
@click.option("--trace-samples", type=click.IntRange(min=0), default=4, show_default=True,
              help="With --trace: N examples of each recorded batch whose feature maps are kept, and the first N "
                   "test images as a fixed probe run forward at every recorded step (0: neither).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --save checkpoint or --trace trace.")
@click.pass_context
def cli(ctx, device, variant, init, epochs, batch_size, lr, momentum, dampening, weight_decay, nesterov, seed, limit,
        data_dir, download, plot, save, resume, trace_path=None, trace_every=50, trace_samples=4, overwrite=False):
    """Train LeNet on Fashion-MNIST (D2L 6.6) and report loss and accuracy after each epoch.

    The book's recipe is the default: d2l variant, Xavier init, lr 0.9, batch 256, 10 epochs. Its sigmoid
    network with plain SGD stays at chance (loss 2.30) for its first ~300 steps, about 1.3 epochs of the full
    data: short runs (--limit) learn only with e.g. --variant modern --momentum 0.9 --lr 0.03 --batch-size 64.
    """
    from numbacnn.cli import ensure_cudasim, fail

    ensure_cudasim(device)
    check_outputs(plot, save, trace_path, resume, overwrite)
    from numbacnn import data as data_mod
    from numbacnn.cuda import NoGPUError
    from numbacnn.models import lenet
    from numbacnn.optim import SGD, check_hyperparameters
    from numbacnn.train import (CheckpointError, NonFiniteLossError, batch_slices, evaluate, load_optimizer_state,
                                save_checkpoint, train_epoch)

    config = dict(variant=variant, init=init, seed=seed, batch_size=batch_size, limit=limit, lr=lr,
                  momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    progress = dict(epoch=0, batch=0, loss_sum=0.0, correct=0, seen=0, train_seconds=0.0)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    model_state = optim_state = None
    if resume is not None:
        model_state, optim_state, meta = read_resume(resume)
        saved = meta["config"]
        for key in FIXED_ON_RESUME:
            explicit = ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE
            if explicit and config[key] != saved[key]:
                fail(f"--{key.replace('_', '-')} {config[key]} differs from the resumed run's {saved[key]!r} "
                     f"(the model and data order must stay the same)", 2)
            config[key] = saved[key]
        for key in OPTIM_OPTIONS:  # explicit options override the saved hyperparameters
            if ctx.get_parameter_source(key) != click.core.ParameterSource.COMMANDLINE:
                config[key] = saved[key]
        progress.update(meta["progress"])
        history = meta["history"]
    try:
        check_hyperparameters(config["lr"], config["momentum"], config["dampening"], config["weight_decay"],
                              config["nesterov"])
    except ValueError as exc:
        fail(str(exc), 2)

    # the kernels compile in forked workers while the data loads (a first run; nothing to do on a warm cache)
    sgd_options = {k: config[k] for k in OPTIM_OPTIONS}
    compiling = start_compiling(lambda: lenet(config["variant"], seed=0), device, sgd_options, config["batch_size"])
    if compiling is not None:
        ctx.call_on_close(compiling.cancel)  # a command that stops before training does not wait for them
    try:
        with DownloadBars() as bars:
            ds = data_mod.load_fashion_mnist(data_dir, download_missing=download, progress=bars)
    except (data_mod.DataNotFoundError, data_mod.DataFormatError) as exc:
        fail(str(exc))
    click.echo(f"data: {data_mod.locate_fashion_mnist(data_dir)}")
    n = config["limit"]
    x_train, y_train = ds.train_images[:n], ds.train_labels[:n]
    x_test, y_test = ds.test_images[:n], ds.test_labels[:n]

    net = lenet(config["variant"], init=config["init"], seed=config["seed"])
    try:
        net.to(device)
    except NoGPUError as exc:
        fail(str(exc))
    opt = SGD(net.parameters(), lr=config["lr"], momentum=config["momentum"], dampening=config["dampening"],
              weight_decay=config["weight_decay"], nesterov=config["nesterov"])
    if model_state is not None:
        try:
            net.load_state_dict(model_state)
        except ValueError as exc:
            fail(f"--resume {resume}: {exc}")
        if optim_state is not None:
            try:
                load_optimizer_state(opt, optim_state, net.device, resume)
            except CheckpointError as exc:
                fail(f"--resume {resume}: {exc}")
        opt.defaults.update({k: config[k] for k in OPTIM_OPTIONS})

    device_label = _device_label(device)
    n_batches = len(batch_slices(len(x_train), config["batch_size"]))
    if progress["batch"] > n_batches:
        fail(f"--resume {resume}: its progress is at batch {progress['batch']} but an epoch of this data has "
             f"{n_batches} batches (the checkpoint is of another data set)")
    tracer = None
    if trace_path is not None:
        from numbacnn.trace import TraceError, Tracer
        from numbacnn.trace.writer import check_folder

        if resume is not None and check_folder(trace_path, overwrite, True) == "continue":
            trace_every, trace_samples = _continued_sampling(ctx, trace_path, trace_every, trace_samples)

        # a fixed probe (the same test images at every recorded step), so feature maps can be followed across
        # training; a NumPy array on every target (the tracer copies it to the device once)
        probe = x_test[:trace_samples] if trace_samples and len(x_test) else None
        meta = dict(config, epochs=epochs, target=device)
        if probe is not None:  # the probe's true classes, for `animate features`
            meta["probe_labels"] = [int(v) for v in y_test[:len(probe)]]
        try:
            tracer = Tracer(net, opt, trace_path, every=trace_every, samples=trace_samples, probe=probe, meta=meta,
                            overwrite=overwrite, resume=resume is not None, same=FIXED_ON_RESUME,
                            start_step=progress["epoch"] * n_batches + progress["batch"])
        except ValueError as exc:  # TraceError included: a damaged trace cannot be continued
            fail(f"--trace {trace_path}: " + str(exc).replace(f"path {trace_path!r} ", "").replace(
                "pass overwrite=True", "pass --overwrite"), 2)

        def close_trace():  # runs however the command ends; an exit other than success marks it incomplete
            exc = sys.exc_info()[1]
            ok = exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None))
            try:
                tracer.close(None if ok else f"run stopped: {type(exc).__name__} {exc}")
            except TraceError as err:  # the last writes failed (a full disk): said once, never as a traceback
                if ok:
                    fail(f"training stopped: {err}")

        ctx.call_on_close(close_trace)

    def checkpoint():
        meta = {"config": config, "progress": progress, "history": history, "epochs": epochs}
        save_checkpoint(save, net, opt, meta)

    if progress["epoch"] >= epochs:
        click.echo(f"nothing to do: the run already has {progress['epoch']} epochs (--epochs {epochs})")
        return
    if resume is not None:
        click.echo(f"resuming {resume} at epoch {progress['epoch'] + 1}, batch {progress['batch'] + 1}")
    click.echo(f"training LeNet ({config['variant']}) on {len(x_train)} examples, testing on {len(x_test)}, "
               f"on {device_label}")
    epoch = progress["epoch"]
    stop = StopAfterBatch(opt).__enter__()
    booked = [stop.applied]  # optimizer steps whose batch the progress counts
    try:
        warm_kernels(lambda: lenet(config["variant"], seed=0), device, x_train, y_train, sgd_options,
                     config["batch_size"], compiling)
        while epoch < epochs:
            label = f"epoch {epoch + 1}/{epochs}"

            def describe():
                return f"loss {progress['loss_sum'] / max(progress['seen'], 1):.3f} so far"

            with progress_bar(n_batches, label, describe) as bar:
                bar.update(progress["batch"])
                t0 = [time.perf_counter()]

                def on_batch(i, loss, correct, size):
                    now = time.perf_counter()
                    progress["train_seconds"] += now - t0[0]
                    progress.update(batch=i + 1, loss_sum=progress["loss_sum"] + loss * size,
                                    correct=progress["correct"] + correct, seen=progress["seen"] + size)
                    booked[0] = stop.applied
                    bar.update(1)  # (train_batch handed loss and accuracy to the tracer: no tracer.log here)
                    t0[0] = time.perf_counter()
                    stop.check()  # a Ctrl-C during the batch stops here, with the batch counted

                try:
                    stop.active = True
                    train_epoch(net, opt, x_train, y_train, batch_size=config["batch_size"], seed=config["seed"],
                                epoch=epoch, start_batch=progress["batch"], on_batch=on_batch)
                    stop.active = False
                except NonFiniteLossError as exc:
                    step = epoch * n_batches + exc.step
                    fail(f"training stopped: the loss became {exc.loss} at epoch {epoch + 1}, batch {exc.step} "
                         f"(step {step}). The learning rate {config['lr']} is probably too large for this run; "
                         f"try a smaller one, e.g. --lr {config['lr'] / 2:g}.")
            test_acc = evaluate(net, x_test, y_test)
            seen = max(progress["seen"], 1)
            train_loss, train_acc = progress["loss_sum"] / seen, progress["correct"] / seen
            speed = progress["seen"] / max(progress["train_seconds"], 1e-9)
            history["train_loss"].append(train_loss)
            history["train_acc"].append(train_acc)
            history["test_acc"].append(test_acc)
            epoch += 1
            progress.update(epoch=epoch, batch=0, loss_sum=0.0, correct=0, seen=0, train_seconds=0.0)
            click.echo(f"epoch {epoch}/{epochs}: loss {train_loss:.3f}, train acc {train_acc:.3f}, "
                       f"test acc {test_acc:.3f}, {speed:.1f} examples/sec on {device_label}")
            if save:
                checkpoint()
            if plot:
                plot_curves(history, plot)
    except KeyboardInterrupt:
        stop.active = False
        if stop.applied > booked[0]:  # stopped at once after a batch's update, before its bookkeeping
            progress["batch"] += stop.applied - booked[0]  # (its loss is missing from the epoch's average)
        click.echo("", err=True)
        where = f"epoch {progress['epoch'] + 1}, after batch {progress['batch']}"
        if save:
            checkpoint()
            click.echo(f"interrupted at {where}; saved to {save} (continue with --resume {save})", err=True)
        else:
            click.echo(f"interrupted at {where}; nothing saved (use --save to keep progress)", err=True)
        if plot and history["train_loss"]:
            plot_curves(history, plot)
        sys.exit(130)
    except OSError as exc:  # a full disk or a vanished folder while writing a trace, checkpoint or plot
        fail(f"training stopped: could not write {getattr(exc, 'filename', None) or 'an output file'}: {exc}")
    except ValueError as exc:
        from numbacnn._io import NotAFileTargetError
        from numbacnn.trace import TraceError

        if isinstance(exc, NotAFileTargetError):  # an output replaced by a folder or a device during the run
            fail(f"training stopped: {exc}")
        if not isinstance(exc, TraceError):
            raise
        fail(f"training stopped: {exc}")
    finally:
        stop.__exit__(None, None, None)
    if save:
        click.echo(f"saved to {save}")
    if plot:
        click.echo(f"curves written to {plot}")
    if tracer is not None:
        click.echo(f"trace written to {trace_path} (see: numbacnn trace info {trace_path})")
