"""`numbacnn animate ...` (numbacnn.commands.animate): run numbacnn's kernels with tracing, hand the record to
numbacnn.viz.

Every subcommand shares -o/--output (the extension picks .gif .mp4 .html .png), --fps and --dpi
(numbacnn.commands._common). The numbers come from the kernels (numbacnn.trace / numbacnn.scenarios); viz only
draws them.
"""
from __future__ import annotations

import functools
import os
import warnings

import click

from numbacnn.cli import ensure_cudasim, fail

from ._common import (FiniteFloat, check_output, device_option, int_pair, load_trace, name_suffix, output_options,
                      parse, run_kernels, save_animation)

FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max, without importing NumPy to parse options
MAX_FRAMES = 1500  # one frame per window: beyond this a render takes minutes and the file is huge


@click.group("animate")
def cli():
    """Animations drawn from what numbacnn's kernels computed (GIF, MP4, HTML or PNG).

    \b
    numbacnn animate conv --kernel edge        the book's edge detection, window by window
    numbacnn animate pool --compare            max, avg and min pooling side by side
    numbacnn animate learn-kernel              gradient descent learns the edge kernel
    numbacnn animate sgd                       SGD vs. momentum vs. Nesterov on a 2-D loss
    numbacnn animate features run.nctrace      feature maps of a traced training run
    numbacnn animate cuda-grid                 which CUDA block and thread computed each output
    """


# ------------------------------------------------------------------------------------------------
# conv


PRESETS = ("d2l-edge", "checker", "digit")


def _input(name, size, hint="'--size'"):
    """--input (a preset or an image file) resized by ``size`` (the option ``hint``), as a float32 (H, W) array."""
    from numbacnn import scenarios

    shape = parse(scenarios.parse_size, size, hint)
    exact = size is not None and "x" in str(size).lower()  # N: the longest side, keeping the aspect ratio
    if name in PRESETS:
        x = scenarios.preset_input(name)
        if shape is not None:
            from PIL import Image

            h, w = scenarios.fit_size(x.shape, shape, exact)
            img = Image.fromarray((x * 255).astype("uint8")).resize((w, h), Image.Resampling.NEAREST)
            import numpy as np

            x = (np.asarray(img, dtype=np.float32) / 255).round(2)
        return x
    if not os.path.lexists(name):
        raise click.BadParameter(f"{name!r} is neither {', '.join(PRESETS)} nor an existing image file",
                                 param_hint="'--input'")
    try:
        return scenarios.load_image(name, shape, exact=exact)
    except scenarios.ImageInputError as exc:
        raise click.BadParameter(str(exc), param_hint="'--input'")
    except OSError as exc:
        fail(f"cannot read --input {name!r}: {exc.strerror or exc}", 1)


@cli.command("conv")
@click.option("--kernel", "kernel_text", default="edge", show_default=True,
              help="edge, sobel-x, sobel-y, laplacian, blur, sharpen, identity, or rows of numbers: "
                   "\"1,0,-1;2,0,-2;1,0,-1\".")
@click.option("--input", "input_name", default="d2l-edge", show_default=True,
              help="d2l-edge (the book's 6x8 image), checker, digit, or an image file (made grayscale).")
@click.option("--size", default=None, help="Resize the input: N (longest side, image files default 12) or HxW.")
@click.option("--stride", default="1", show_default=True, help="Stride: N or SH,SW.")
@click.option("--padding", default="0", show_default=True, help="Zero padding: N or PH,PW (drawn hatched).")
@click.option("--dilation", default="1", show_default=True, help="Dilation: N or DH,DW.")
@click.option("--flip", is_flag=True, help="Show strict convolution (kernel flipped) beside cross-correlation.")
@click.option("--channels", default=None,
              help="CIN or CIN,COUT: several input channels (x + c) whose products are summed, and several output "
                   "channels (kernels K + c + o), as in D2L 6.4.")
@click.option("--bias", type=FiniteFloat(), default=None, help="Add a bias to every output channel.")
@click.option("--backward", is_flag=True,
              help="Show the gradients instead: the kernel's (a correlation of x with the output gradient), "
                   "then the input's (a full convolution).")
@device_option()
@output_options
def conv_cmd(kernel_text, input_name, size, stride, padding, dilation, flip, channels, bias, backward, device,
             output, fps, dpi):
    """Slide a kernel over an image one window at a time: the window, the products, their sum, the output."""
    ensure_cudasim(device)
    import numpy as np

    from numbacnn import scenarios

    K = parse(scenarios.parse_kernel, kernel_text, "'--kernel'")
    st = int_pair(stride, "stride", 1)
    pd = int_pair(padding, "padding", 0)
    dl = int_pair(dilation, "dilation", 1)
    cin, cout = 1, 1
    if channels is not None:
        ch = int_pair(channels, "channels", 1)
        cin, cout = (ch, 1) if isinstance(ch, int) else ch
        if cin > 4 or cout > 4:
            raise click.BadParameter(f"at most 4 input and 4 output channels are drawn, got {channels!r}",
                                     param_hint="'--channels'")
    if (backward or flip) and (cin, cout) != (1, 1):
        raise click.UsageError("--channels cannot be combined with --flip or --backward (one channel is drawn)")
    if backward and flip:
        raise click.UsageError("--flip and --backward are separate animations: pick one")
    X = _input(input_name, size)
    name = kernel_text if kernel_text in scenarios.KERNELS else "custom"
    inp = input_name if input_name in PRESETS else os.path.splitext(
        os.path.basename(input_name))[0]
    default = (f"conv-{name}-{inp}" + ("-backward" if backward else "") + ("-flip" if flip else "")
               + name_suffix(s=stride, p=padding, d=dilation) + (f"-c{cin}x{cout}" if channels else "") + ".gif")
    output = output or default
    check_output(output)
    x = np.stack([X + c for c in range(cin)])[None].astype(np.float32)
    w = np.stack([np.stack([K + c + o for c in range(cin)]) for o in range(cout)]).astype(np.float64)
    _check_float32_sums(x, w, bias)
    w = w.astype(np.float32)
    b = None if bias is None else np.full(cout, bias, np.float32)
    from numbacnn.cuda import NoGPUError

    common = dict(stride=st, padding=pd, dilation=dl, device=device)
    resized = "" if size is None else f" (--size {size!r})"
    ho, wo = _out_hw(x.shape, w.shape, st, pd, dl,
                     f"--kernel {kernel_text!r} is {K.shape[0]}x{K.shape[1]} with --dilation {dilation}, --input "
                     f"{input_name!r} is {X.shape[0]}x{X.shape[1]}{resized} with --padding {padding}")
    frames = ho * wo * cout if not backward else K.size + X.size
    if frames > MAX_FRAMES:
        raise click.UsageError(f"that is {frames} frames (the output is {ho}x{wo}: --input "
                               f"{input_name!r} is {X.shape[0]}x{X.shape[1]}, --kernel {K.shape[0]}x{K.shape[1]}, "
                               f"--stride {stride}, --padding {padding}, --dilation {dilation}); at most "
                               f"{MAX_FRAMES} are drawn: use a smaller --size or --padding, or a larger --stride")
    from numbacnn.trace import TraceVerificationError

    try:
        trace, flipped = run_kernels(_conv_traces, x, w, b, backward, flip, (ho, wo), common)
    except (NoGPUError, TraceVerificationError) as exc:
        fail(str(exc), 1)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    from numbacnn import viz

    anim = viz.conv(trace, flipped=flipped, dpi=dpi)
    save_animation(anim, output, fps or 2)


def _check_float32_sums(x, w, bias):
    """The kernels add in float32: a kernel (or bias) so large that a window's sum, or a gradient's (the example
    output gradient is at most 2), would pass float32's largest value (3.4e38) is a usage error, not an inf."""
    import numpy as np

    big = float(np.finfo(np.float32).max) / 4
    if bias is not None and not abs(bias) <= big:
        raise click.BadParameter(f"must be at most {big:.2g} in magnitude (float32 sums), got {bias!r}",
                                 param_hint="'--bias'")
    reach = np.abs(w).sum(axis=(1, 2, 3)).max() * max(float(np.abs(x).max()), 2.0) + abs(bias or 0.0)
    if not reach <= big:
        raise click.BadParameter(f"a window's sum could reach {reach:.2g}, too close to float32's largest value "
                                 f"({float(np.finfo(np.float32).max):.2g}): use smaller kernel values",
                                 param_hint="'--kernel'")


def _conv_traces(x, w, b, backward, flip, out_hw, common):
    """(trace, flipped trace or None): the real conv2d (or conv2d_backward) run with tracing."""
    from numbacnn.trace import trace_conv2d

    if backward:
        return trace_conv2d(x, w, b, backward=True, grad_out=_example_grad(out_hw), **common), None
    flipped = trace_conv2d(x, w, b, flip=True, **common) if flip else None
    return trace_conv2d(x, w, b, **common), flipped


def _out_hw(x_shape, w_shape, stride, padding, dilation, options):
    """The output's (HO, WO); a kernel that does not fit is a usage error naming the ``options`` that made it."""
    from numbacnn.geometry import conv_geometry

    try:
        return conv_geometry(x_shape, w_shape, None, stride, padding, dilation).out_hw
    except ValueError as exc:
        raise click.UsageError(f"{exc} ({options})")


def _example_grad(hw):
    """An example output gradient: small integers in -1..2 (seeded), so the arithmetic reads easily."""
    import numpy as np

    return np.random.default_rng(0).integers(-1, 3, size=(1, 1) + tuple(hw)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# pool


@cli.command("pool")
@click.option("--mode", type=click.Choice(["max", "avg", "min"]), default="max", show_default=True)
@click.option("--size", "pool_size", default="2", show_default=True, help="Window size: N or KH,KW.")
@click.option("--stride", default=None, help="Stride: N or SH,SW (default: the window size).")
@click.option("--padding", default="0", show_default=True, help="Padding: N or PH,PW (at most half the window).")
@click.option("--compare", is_flag=True, help="Max, avg and min pooling side by side on the same input.")
@click.option("--input", "input_name", default="digits", show_default=True,
              help="digits (a grid of numbers 0-9, 6x6 unless --image-size), d2l-edge, checker, digit, or an "
                   "image file.")
@click.option("--image-size", "image_size", default=None, help="Resize the input: N or HxW.")
@device_option()
@output_options
def pool_cmd(mode, pool_size, stride, padding, compare, input_name, image_size, device, output, fps, dpi):
    """Pool one window at a time: the window, the element max/min picks, or the mean avg computes."""
    ensure_cudasim(device)
    import numpy as np

    ks = int_pair(pool_size, "size", 1)
    st = None if stride is None else int_pair(stride, "stride", 1)
    pd = int_pair(padding, "padding", 0)
    from numbacnn import scenarios

    if input_name == "digits":
        X = _digits(parse(scenarios.parse_size, image_size, "'--image-size'"))
    else:
        X = _input(input_name, image_size, "'--image-size'")
    modes = ["max", "avg", "min"] if compare else [mode]
    default = (f"pool-{'compare' if compare else mode}" + name_suffix(k=pool_size, s=stride, p=padding) + ".gif")
    output = output or default
    check_output(output)
    if X.size > MAX_FRAMES:
        raise click.UsageError(f"the input is {X.shape[0]}x{X.shape[1]} ({X.size} cells, --input {input_name!r}, "
                               f"--image-size {image_size!r}); at most {MAX_FRAMES} are drawn: use a smaller "
                               "--image-size")
    from numbacnn.geometry import pool_geometry

    try:
        pool_geometry((1, 1) + X.shape, ks, st, pd)
    except ValueError as exc:
        resized = "" if image_size is None else f" with --image-size {image_size!r}"
        raise click.UsageError(f"{exc} (--size {pool_size!r}, --stride {stride or pool_size!r}, --padding "
                               f"{padding!r}, --input {input_name!r} is {X.shape[0]}x{X.shape[1]}{resized})")
    from numbacnn.cuda import NoGPUError

    from numbacnn.trace import TraceVerificationError

    try:
        traces = run_kernels(_pool_traces, X[None, None], modes, ks, st, pd, device)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    except (NoGPUError, TraceVerificationError) as exc:
        fail(str(exc), 1)
    from numbacnn import viz

    save_animation(viz.pool(*traces, dpi=dpi), output, fps or 2)


def _digits(shape):
    """The 'digits' input: numbers 0-9 in an (H, W) grid (default 6x6; --image-size N or HxW picks the size)."""
    import numpy as np

    h, w = shape if shape is not None else (6, 6)
    return np.arange(h * w, dtype=np.float32).reshape(h, w) * 7 % 10


def _pool_traces(x, modes, ks, st, pd, device):
    from numbacnn.trace import trace_pool2d

    return [trace_pool2d(x, m, ks, st, pd, device=device) for m in modes]


# ------------------------------------------------------------------------------------------------
# learn-kernel and sgd


@cli.command("learn-kernel")
@click.option("--steps", type=click.IntRange(1, 200), default=10, show_default=True, help="Iterations.")
@click.option("--lr", type=FiniteFloat(min=0, max=FLOAT32_MAX), default=3e-2, show_default=True,
              help="Learning rate (the kernel is float32: at most 3.4e38).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the initial kernel.")
@output_options
def learn_kernel_cmd(steps, lr, seed, output, fps, dpi):
    """Learn the edge kernel [1, -1] from an image and its edges by gradient descent (D2L 6.2.4)."""
    output = output or "learn-kernel.gif"
    check_output(output)
    from numbacnn import scenarios

    record = run_kernels(scenarios.learn_kernel, steps, lr, seed)
    import numpy as np

    losses = record.losses
    diverged = not np.all(np.isfinite(losses)) or losses[-1] > 10 * max(losses[0], 1e-12)
    if diverged:  # drawn as it happened (inf and nan included), with a line saying why
        default = 3e-2
        click.echo(f"note: the kernel diverged with --lr {lr:g} (the loss grew without bound): try a lower --lr, "
                   f"e.g. --lr {default if lr > default else lr / 10:g}", err=True)
    from numbacnn import viz

    with warnings.catch_warnings():
        if diverged:  # matplotlib's colour scaling warns about the inf/nan it is asked to draw
            warnings.simplefilter("ignore", RuntimeWarning)
        save_animation(viz.learn_kernel(record, dpi=dpi), output, fps or 2)


@cli.command("sgd")
@click.option("--surface", type=click.Choice(["quadratic", "rosenbrock"]), default="quadratic", show_default=True,
              help="The 2-D loss: an ill-conditioned quadratic (0.1 x² + 2 y²) or Rosenbrock's valley.")
@click.option("--steps", type=click.IntRange(1, 500), default=None, help="Steps (default 20 / 80).")
@click.option("--lr", type=FiniteFloat(min=0), default=None, help="Learning rate (default 0.3 / 0.0015).")
@click.option("--momentum", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Momentum of the momentum and Nesterov runs (default 0.6 / 0.9).")
@click.option("--dampening", type=FiniteFloat(0, 1), default=0.0, show_default=True,
              help="Dampening of the momentum run (Nesterov needs 0: use --no-nesterov with it).")
@click.option("--weight-decay", type=FiniteFloat(min=0), default=0.0, show_default=True)
@click.option("--nesterov/--no-nesterov", default=None,
              help="--nesterov: plain SGD vs. Nesterov only; --no-nesterov: plain SGD vs. momentum only. "
                   "Default: all three.")
@click.option("--trace", "trace_path", type=click.Path(exists=True), default=None,
              help="Instead: a parameter's gradient and momentum buffer over the steps of a traced training run.")
@click.option("--param", default=None, help="With --trace: the parameter to show (default: the first).")
@output_options
def sgd_cmd(surface, steps, lr, momentum, dampening, weight_decay, nesterov, trace_path, param, output, fps, dpi):
    """SGD, momentum and Nesterov side by side: trajectories, gradient / buffer / update arrows, losses."""
    ctx = click.get_current_context()
    given = [(f"--{'' if nesterov else 'no-'}nesterov" if n == "nesterov" else
              f"--{n.replace('_', '-')} {ctx.params[n]}") for n in ("surface", "steps", "lr", "momentum", "dampening",
                                                                   "weight_decay", "nesterov")
             if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]
    if trace_path is not None:
        if given:
            raise click.UsageError(f"{', '.join(given)}: these set the 2-D loss run, which --trace replaces (a traced "
                                   "run shows its own optimizer's numbers): drop them or drop --trace")
        return _sgd_trace(trace_path, param, output, fps, dpi)
    if param is not None:
        raise click.UsageError(f"--param {param!r} picks a parameter of a --trace run: it needs --trace")
    if dampening != 0 and nesterov is not False:
        raise click.UsageError(f"--dampening {dampening:g} applies to the momentum run only: Nesterov momentum "
                               "requires zero dampening, so add --no-nesterov (plain SGD vs. damped momentum)")
    from numbacnn import scenarios

    output = output or f"sgd-{surface}.gif"
    check_output(output)
    try:
        run = run_kernels(functools.partial(scenarios.sgd_paths, surface, steps, lr=lr, momentum=momentum,
                                             dampening=dampening, weight_decay=weight_decay, nesterov=nesterov))
    except ValueError as exc:
        raise click.UsageError(str(exc))
    hint = _divergence_hint(run)
    if hint:
        click.echo(hint, err=True)
    from numbacnn import viz

    save_animation(viz.sgd_paths(run, dpi=dpi), output, fps or 3)


def _divergence_hint(run):
    """One line naming the runs that diverged and the --lr they used, with a smaller one to try; or None."""
    from numbacnn import scenarios
    from numbacnn.viz.sgd import TITLES

    gone = [p for p in run["paths"] if scenarios.diverged_at(p) is not None]
    if not gone:
        return None
    lr = gone[0].hyper["lr"]
    default = scenarios.SURFACES[run["surface"]]["lr"]
    lower = default if lr > default else lr / 10
    names = [TITLES[p.variant] for p in gone]
    names = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    also = "" if gone[0].variant == "sgd" else f" (or a smaller --momentum than {gone[0].hyper['momentum']:g})"
    return (f"note: {names} diverged with --lr {lr:g} (the loss grew without bound): try a lower --lr, "
            f"e.g. --lr {lower:g}{also}")


def _sgd_trace(path, param, output, fps, dpi):
    trace = load_trace(path)
    if not hasattr(trace, "params"):
        fail(f"{path!r} is an op trace; --trace needs a training trace (numbacnn train-lenet --trace ...)", 1)
    params = list(trace.params)
    name = param if param is not None else (params[0] if params else None)
    if name not in params:
        raise click.BadParameter(f"{name!r} is not a traced parameter; traced: {', '.join(map(str, params))}",
                                 param_hint="'--param'")
    output = output or f"sgd-trace-{str(name).replace('.', '-')}.gif"
    check_output(output)
    from numbacnn import viz

    try:
        anim = viz.sgd_trace(trace, name, dpi=dpi)
    except ValueError as exc:
        fail(str(exc), 1)
    save_animation(anim, output, fps or 3)


# ------------------------------------------------------------------------------------------------
# features (cuda-grid: numbacnn.commands.animate_cuda_grid)


@cli.command("features")
@click.argument("trace_path", type=click.Path(exists=True))
@click.option("--example", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which traced example (of the fixed probe, or of the batch with --source batch).")
@click.option("--source", type=click.Choice(["probe", "batch"]), default=None,
              help="probe: the trace's fixed test images, the same at every step (default when the trace has "
                   "them); batch: the first examples of each step's training batch (a new image each step).")
@click.option("--max-channels", type=click.IntRange(1, 16), default=6, show_default=True,
              help="Channels drawn per layer.")
@output_options
def features_cmd(trace_path, example, source, max_channels, output, fps, dpi):
    """One example's feature maps through every layer of a traced network, across training steps."""
    trace = load_trace(trace_path)
    if not hasattr(trace, "layers"):
        fail(f"{trace_path!r} is an op trace; features needs a training trace (numbacnn train-lenet --trace ...)", 1)
    if source == "probe" and not getattr(trace, "has_probe", False):
        raise click.BadParameter(f"'probe': {trace_path!r} has no fixed probe (train-lenet --trace-samples N records "
                                 "one): use --source batch", param_hint="'--source'")
    output = output or "features.gif"
    check_output(output)
    from numbacnn import viz
    from numbacnn.viz.features import ExampleNotTraced

    try:
        anim = viz.features(trace, example=example, max_channels=max_channels, source=source, dpi=dpi)
    except ExampleNotTraced as exc:
        raise click.BadParameter(str(exc), param_hint="'--example'")
    except ValueError as exc:
        fail(str(exc), 1)
    save_animation(anim, output, fps or 2)


from . import animate_cuda_grid  # noqa: E402,F401  (registers `animate cuda-grid` on this group)
