"""`numbacnn explore ...` (numbacnn.commands.explore): write one self-contained HTML page where the learner turns
the knobs and sees numbacnn's kernels' own numbers (numbacnn.explore computes them; the page only looks them up).

Every subcommand takes -o/--output (an .html file, checked before any work; written atomically) and prints the
path it wrote.
"""
from __future__ import annotations

import os

import click

from numbacnn.cli import fail

from ._common import check_path, path_callback

HTML = (".html", ".htm")


def output_option(f):
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                        callback=path_callback(HTML),
                        help="The page to write (.html). Default: explore-<what>.html in the current folder.")(f)


class ExploreGroup(click.Group):
    """`explore conv|pool|sgd ...`, and `explore RUN.nctrace` as a short form of `explore run RUN.nctrace`."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-") and "run" in self.commands:
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


@click.group("explore", cls=ExploreGroup)
def cli():
    """Interactive pages (one self-contained HTML file each, nothing fetched): turn the knobs, see the numbers
    numbacnn's kernels computed.

    \b
    numbacnn explore conv                 padding, stride, dilation, flip, channels/groups, forward and backward
    numbacnn explore pool                 max/avg/min pooling, window, stride, padding, ceil_mode, backward
    numbacnn explore sgd                  SGD, momentum and Nesterov on a 2-D loss, every hyperparameter
    numbacnn explore cuda                 conv2d's CUDA kernels, thread by thread (Numba's CUDA simulator)
    numbacnn explore RUN.nctrace          a recorded training run (numbacnn train-lenet --trace RUN.nctrace)
    """


def _write(page, output, default):
    path = output or default
    if output is None:
        check_path(path)
    try:
        page.save(path)
    except OSError as exc:
        fail(f"cannot write {path!r}: {exc.strerror or exc}", 1)
    click.echo(f"wrote {path} ({page.nbytes / 1e6:.1f} MB)")


# ------------------------------------------------------------------------------------------------
# conv


def _conv_input(name, size):
    """(preset name, extra inputs): a preset as it is, an image file loaded grayscale (numbacnn.scenarios)."""
    from numbacnn import scenarios

    shape = _parse(scenarios.parse_size, size, "'--size'")
    if name in ("d2l-edge", "checker", "digit"):
        if size is not None:
            raise click.UsageError("--size resizes an image file; the presets keep their size")
        return name, {}
    if not os.path.exists(name):
        raise click.BadParameter(f"{name!r} is neither a preset nor an existing image file",
                                 param_hint="'--input'")
    if shape is not None and max(shape) > 16:
        raise click.BadParameter(f"at most 16 pixels per side fit the page, got {size!r}", param_hint="'--size'")
    try:
        X = scenarios.load_image(name, shape, exact=size is not None and "x" in str(size).lower())
    except OSError as exc:
        fail(str(exc), 1)
    stem = os.path.splitext(os.path.basename(name))[0] or "image"
    return stem, {stem: X}


def _parse(fn, text, hint):
    try:
        return fn(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint)


@cli.command("conv")
@click.option("--kernel", "kernel_text", default="edge", show_default=True,
              help="The kernel shown first: edge, sobel-x, sobel-y, laplacian, blur, sharpen, identity, or rows of "
                   "numbers (\"1,0,-1;2,0,-2;1,0,-1\", at most 5x5), added to the presets on the page.")
@click.option("--input", "input_name", default="d2l-edge", show_default=True,
              help="The input shown first: d2l-edge, checker, digit, or an image file (grayscale, added to the "
                   "presets on the page).")
@click.option("--size", default=None, help="Resize an --input image file: N (longest side, default 12) or HxW, at "
                                           "most 16.")
@click.option("--padding", type=click.Choice(["0", "1", "2"]), default="0", show_default=True)
@click.option("--stride", type=click.Choice(["1", "2", "3"]), default="1", show_default=True)
@click.option("--dilation", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--flip", is_flag=True, help="Start with strict convolution (the kernel flipped).")
@click.option("--backward", is_flag=True, help="Start on the backward pass (the gradients).")
@output_option
def conv_cmd(kernel_text, input_name, size, padding, stride, dilation, flip, backward, output):
    """Convolution under every option: turn padding, stride, dilation, flip, channels/groups, see each window's
    arithmetic (forward) or which output gradients reach each input cell (backward)."""
    from numbacnn import scenarios

    K = _parse(scenarios.parse_kernel, kernel_text, "'--kernel'")
    if K.shape[0] > 5 or K.shape[1] > 5:
        raise click.BadParameter(f"at most 5x5 fits the page, got {K.shape[0]}x{K.shape[1]}", param_hint="'--kernel'")
    kname = kernel_text if kernel_text in scenarios.KERNELS else "custom"
    iname, extra_inputs = _conv_input(input_name, size)
    if output is None:
        check_path("explore-conv.html")
    from numbacnn import explore

    page = explore.conv(iname, kname, extra_inputs=extra_inputs,
                        extra_kernels={} if kname in scenarios.KERNELS else {"custom": K},
                        padding=int(padding), stride=int(stride), dilation=int(dilation), flip=flip,
                        backward=backward)
    _write(page, output, "explore-conv.html")


# ------------------------------------------------------------------------------------------------
# pool


@cli.command("pool")
@click.option("--mode", type=click.Choice(["max", "avg", "min"]), default="max", show_default=True,
              help="The mode shown first (all three are on the page).")
@click.option("--input", "input_name", default="digits", show_default=True,
              help="The input shown first: digits (a 6x6 grid of numbers 0-9), d2l-edge, checker, digit, or an "
                   "image file (grayscale, added to the presets on the page).")
@click.option("--size", default=None, help="Resize an --input image file: N or HxW, at most 16.")
@click.option("--window", type=click.Choice(["2", "3"]), default="2", show_default=True)
@click.option("--stride", type=click.Choice(["1", "2", "3"]), default="2", show_default=True)
@click.option("--padding", type=click.Choice(["0", "1"]), default="0", show_default=True)
@click.option("--ceil-mode", is_flag=True, help="Start with ceil_mode on.")
@click.option("--backward", is_flag=True, help="Start on the backward pass (the gradient routing).")
@output_option
def pool_cmd(mode, input_name, size, window, stride, padding, ceil_mode, backward, output):
    """Pooling under every option: max/avg/min, window, stride, padding, ceil_mode, count_include_pad; the
    element max/min picks, avg's divisor, and where each output gradient goes back."""
    if input_name == "digits":
        if size is not None:
            raise click.UsageError("--size resizes an image file; the presets keep their size")
        iname, extra = "digits", {}
    else:
        iname, extra = _conv_input(input_name, size)
    if output is None:
        check_path("explore-pool.html")
    from numbacnn import explore

    page = explore.pool(iname, mode, extra_inputs=extra, window=int(window), stride=int(stride),
                        padding=int(padding), ceil_mode=ceil_mode, backward=backward)
    _write(page, output, "explore-pool.html")


# ------------------------------------------------------------------------------------------------
# sgd


@cli.command("sgd")
@click.option("--surface", type=click.Choice(["quadratic", "rosenbrock"]), default="quadratic", show_default=True,
              help="The surface shown first (both are on the page).")
@click.option("--maximize", is_flag=True, help="Start with maximize on (the optimizers climb).")
@output_option
def sgd_cmd(surface, maximize, output):
    """Plain SGD, momentum and Nesterov side by side on the 2-D losses of `animate sgd`: learning rate, momentum,
    dampening, weight decay, Nesterov and maximize as controls, a step scrubber, numbacnn.optim.sgd's numbers."""
    if output is None:
        check_path("explore-sgd.html")
    from numbacnn import explore

    _write(explore.sgd(surface, maximize=maximize), output, "explore-sgd.html")


# ------------------------------------------------------------------------------------------------
# cuda


@cli.command("cuda")
@click.option("--input", "input_name", type=click.Choice(["d2l-edge", "checker", "digit"]), default="d2l-edge",
              show_default=True, help="The input shown first (all three are on the page).")
@click.option("--kernel", "kernel_name", type=click.Choice(["edge", "sobel-x", "laplacian"]), default="edge",
              show_default=True, help="The conv kernel shown first (all three are on the page).")
@click.option("--cuda-kernel", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="The CUDA kernel shown first: 1 (one thread per output) or 2 (tiled, shared memory).")
@output_option
def cuda_cmd(input_name, kernel_name, cuda_kernel, output):
    """conv2d's real CUDA kernels watched thread by thread under Numba's CUDA simulator (no GPU needed): which
    block and thread wrote each output, what each read from global and shared memory, phase by phase."""
    from numbacnn.cli import ensure_cudasim

    ensure_cudasim("cudasim")
    if output is None:
        check_path("explore-cuda.html")
    from numbacnn import explore

    _write(explore.cuda(input_name, kernel_name, int(cuda_kernel)), output, "explore-cuda.html")


# ------------------------------------------------------------------------------------------------
# a recorded run


@cli.command("run")
@click.argument("trace_path", metavar="RUN.nctrace", type=click.Path())
@click.option("--max-steps", type=click.IntRange(2, 500), default=60, show_default=True,
              help="At most this many recorded steps on the page (evenly spaced; the page says so).")
@output_option
def run_cmd(trace_path, max_steps, output):
    """A training run recorded by the tracer (numbacnn train-lenet --trace RUN.nctrace, or numbacnn.trace.Tracer):
    loss and accuracy, feature maps, gradients, parameters and predictions, step by step.
    `numbacnn explore RUN.nctrace` is the short form."""
    from numbacnn.trace import TraceError

    if not os.path.exists(trace_path):
        raise click.BadParameter(f"{trace_path!r} does not exist (and is none of conv, pool, sgd, cuda)",
                                 param_hint="'RUN.nctrace'")
    default = (os.path.basename(os.path.normpath(trace_path)).rsplit(".", 1)[0] or "run") + ".html"
    if output is None:
        check_path(default)
    from numbacnn import explore

    try:
        page = explore.run(trace_path, max_steps=max_steps)
    except (TraceError, ValueError, KeyError) as exc:
        fail(f"{trace_path}: {exc}", 1)
    _write(page, output, default)
