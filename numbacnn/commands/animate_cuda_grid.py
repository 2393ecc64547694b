"""`numbacnn animate cuda-grid` (numbacnn.commands.animate_cuda_grid): a CUDA kernel's launch, block by block and
barrier phase by barrier phase, drawn (numbacnn.viz.cuda_grid) from what its threads did under the simulator.
Registered on the `animate` group by numbacnn.commands.animate.
"""
from __future__ import annotations

import click

from numbacnn.cli import ensure_cudasim, fail

from ._common import check_output, device_option, output_options, parse, save_animation
from .animate import cli

OPS = {"conv2d": (1, 2), "linear": (1, 2), "max_pool2d": (1,), "avg_pool2d": (1,), "min_pool2d": (1,)}


@cli.command("cuda-grid")
@click.option("--op", type=click.Choice(sorted(OPS)), default="conv2d", show_default=True)
@click.option("--kernel", type=click.IntRange(min=1), default=None,
              help="Kernel number: conv2d and linear 1 (one thread per output) or 2 (tiled, shared memory; the "
                   "default); the pools have kernel 1.")
@click.option("--threads", type=click.IntRange(1, 64), default=None,
              help="Threads per 1-D block (kernel 1; default 16) or the side of the 2-D tile (kernel 2; default 4): "
                   "small, so the output spans several blocks.")
@click.option("--size", default="8x10", show_default=True,
              help="Output size HxW (linear: examples x output features; each example has 6 input features).")
@device_option(("cudasim",), "cudasim", "Where the kernel runs: cudasim (Numba's CUDA simulator), the only place "
                                        "every thread can be watched. --target is the old name.")
@output_options
def cuda_grid_cmd(op, kernel, threads, size, device, output, fps, dpi):
    """Watch a real CUDA kernel run: which block and thread wrote each output, what each read, and the barriers.

    \b
    numbacnn animate cuda-grid --kernel 1     one thread per output, straight from global memory
    numbacnn animate cuda-grid --kernel 2     tiles: load into shared memory, syncthreads, compute
    numbacnn animate cuda-grid --op linear    a matrix product in 4 x 4 tiles of x and w
    numbacnn animate cuda-grid --op max_pool2d
    """
    ensure_cudasim(device)
    import numpy as np

    from numbacnn import scenarios

    hw = parse(scenarios.parse_size, size, "'--size'")
    kernel = kernel or max(OPS[op])
    if kernel not in OPS[op]:
        raise click.BadParameter(f"{op} has kernels {', '.join(map(str, OPS[op]))} here, got {kernel}",
                                 param_hint="'--kernel'")
    tiled = kernel == 2
    threads = threads or (4 if tiled else 16)
    if tiled and threads > 32:
        raise click.BadParameter(f"a tile side is at most 32 (32 x 32 = 1024 threads per block), got {threads}",
                                 param_hint="'--threads'")
    if not tiled and threads & (threads - 1):
        raise click.BadParameter(f"threads per 1-D block must be a power of two (1, 2, 4, ..., 64), got {threads}",
                                 param_hint="'--threads'")
    output = output or f"cuda-grid-{op}-kernel{kernel}.gif"
    check_output(output)
    from numbacnn.cuda import config
    import numbacnn as nc
    from numbacnn.trace import TraceVerificationError, trace_conv2d, trace_pool2d
    from numbacnn.trace.ops import trace_linear
    from numbacnn.trace.cuda_observe import observe

    rng = np.random.default_rng(0)
    compare = None
    try:
        with config.override(threads_per_block=16 if tiled else threads, tile=threads if tiled else 4):
            if op in ("conv2d", "linear"):
                if op == "conv2d":
                    x = rng.integers(0, 3, size=(1, 1, hw[0] + 2, hw[1] + 2)).astype(np.float32)
                    w = np.array([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], np.float32)
                    trace = trace_conv2d(x, w, device=device, kernel=kernel)
                else:
                    x = rng.integers(0, 3, size=(hw[0], 6)).astype(np.float32)
                    w = rng.integers(-1, 2, size=(hw[1], 6)).astype(np.float32)
                    trace = trace_linear(x, w, device=device, kernel=kernel)
                compare = {kernel: trace.meta["cuda"]["counts"]}  # the traced run, and the other kernel's
                for k in OPS[op]:
                    if k != kernel:
                        with observe() as run:
                            getattr(nc, op)(x, w, device=device, kernel=k)
                        compare[k] = run.counts()
            else:
                x = rng.integers(0, 10, size=(1, 1, hw[0] * 2, hw[1] * 2)).astype(np.float32)
                trace = trace_pool2d(x, op.split("_")[0], 2, device=device, kernel=kernel)
    except TraceVerificationError as exc:
        fail(str(exc), 1)
    from numbacnn import viz

    save_animation(viz.cuda_grid(trace, compare=compare, dpi=dpi), output, fps or 1)
