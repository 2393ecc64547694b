"""`numbacnn animate cuda-grid` (numbacnn.commands.animate_cuda_grid): which CUDA block and thread computed each
output, drawn by numbacnn.viz.cuda_grid. Registered on the `animate` group by numbacnn.commands.animate.
"""
from __future__ import annotations

import click

from numbacnn.cli import ensure_cudasim, fail

from ._common import device_option, int_pair, output_options, parse, save_animation, check_output
from .animate import cli


@cli.command("cuda-grid")
@device_option(("cuda", "cudasim"), "cudasim",
               "Device: cuda (a real GPU) or cudasim (Numba's CUDA simulator, no GPU needed). --target is the "
               "old name.")
@click.option("--op", type=click.Choice(["conv2d", "max_pool2d"]), default="conv2d", show_default=True)
@click.option("--layout", type=click.Choice(["simple", "tiled"]), default=None,
              help="Thread layout (default: what numbacnn.cuda runs): 1-D blocks or 2-D tiles.")
@click.option("--threads", default=None, help="Threads per block: N (simple) or TY,TX (tiled); default small so "
                                              "the output spans several blocks.")
@click.option("--size", default="8x10", show_default=True, help="Output size HxW.")
@output_options
def cuda_grid_cmd(device, op, layout, threads, size, output, fps, dpi):
    """Colour each output element by the CUDA block that computed it; threads light up in launch order."""
    ensure_cudasim(device)
    import numpy as np

    from numbacnn import scenarios

    hw = parse(scenarios.parse_size, size, "'--size'")
    th = None if threads is None else int_pair(threads, "threads", 1)
    layout = layout or "tiled"
    if th is None:
        th = 16 if layout == "simple" else (4, 4)
    output = output or f"cuda-grid-{op}-{layout}.gif"
    check_output(output)
    from numbacnn.cuda import NoGPUError
    from numbacnn.trace import TraceVerificationError, trace_conv2d, trace_pool2d

    rng = np.random.default_rng(0)
    try:
        if op == "conv2d":
            x = rng.integers(0, 3, size=(1, 1, hw[0] + 2, hw[1] + 2)).astype(np.float32)
            w = np.array([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], np.float32)
            trace = trace_conv2d(x, w, device=device, layout=layout, threads=th)
        else:
            x = rng.integers(0, 10, size=(1, 1, hw[0] * 2, hw[1] * 2)).astype(np.float32)
            trace = trace_pool2d(x, "max", 2, device=device, layout=layout, threads=th)
    except (NoGPUError, TraceVerificationError) as exc:
        fail(str(exc), 1)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    from numbacnn import viz

    save_animation(viz.cuda_grid(trace, dpi=dpi), output, fps or 4)
