"""`numbacnn cuda-check OP` (numbacnn.commands.cuda_check): run an op's real CUDA kernel under the simulator,
watch every thread's reads and writes (numbacnn.trace.cuda_observe), check it against the CPU kernels, and report
races, reads of shared memory no thread wrote, and out-of-bounds accesses (exit 1 if any)."""
from __future__ import annotations

import click

from numbacnn.cli import ensure_cudasim, fail

from ._common import device_option

# The simulator runs every CUDA thread as a Python thread: these bounds keep one check within seconds to a minute.
LIMIT = dict(batch=8, channels=16, size=32, features=256, classes=64)


def _size(text):
    from numbacnn import scenarios

    try:
        h, w = scenarios.parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--size'")
    if not (1 <= h <= LIMIT["size"] and 1 <= w <= LIMIT["size"]):
        raise click.BadParameter(f"each side must be 1 to {LIMIT['size']} under the simulator, got {text!r}",
                                 param_hint="'--size'")
    return h, w


def _features(text):
    try:
        fin, fout = (int(v) for v in str(text).split(","))
    except ValueError:
        raise click.BadParameter(f"must be two ints IN,OUT like 20,12, got {text!r}", param_hint="'--features'")
    if not (1 <= fin <= LIMIT["features"] and 1 <= fout <= LIMIT["features"]):
        raise click.BadParameter(f"each must be 1 to {LIMIT['features']}, got {text!r}", param_hint="'--features'")
    return fin, fout


@click.command("cuda-check")
@click.argument("op")
@click.option("--kernel", type=click.IntRange(min=1), default=None,
              help="Kernel number (numbacnn.cuda.<family>.KERNELS); default: the fastest.")
@click.option("--batch", type=click.IntRange(1, LIMIT["batch"]), default=2, show_default=True)
@click.option("--channels", type=click.IntRange(1, LIMIT["channels"]), default=2, show_default=True)
@click.option("--out-channels", type=click.IntRange(1, LIMIT["channels"]), default=3, show_default=True)
@click.option("--size", default="7x7", show_default=True, help="Input height x width (conv, pool, elementwise).")
@click.option("--kernel-size", type=click.IntRange(1, 7), default=3, show_default=True)
@click.option("--stride", type=click.IntRange(1, 4), default=1, show_default=True)
@click.option("--padding", type=click.IntRange(0, 3), default=1, show_default=True)
@click.option("--dilation", type=click.IntRange(1, 3), default=1, show_default=True)
@click.option("--groups", type=click.IntRange(1, LIMIT["channels"]), default=1, show_default=True)
@click.option("--features", default="20,12", show_default=True, help="linear: IN,OUT features.")
@click.option("--classes", type=click.IntRange(2, LIMIT["classes"]), default=5, show_default=True,
              help="cross_entropy: number of classes.")
@click.option("--threads-per-block", type=click.Choice(["1", "2", "4", "8", "16", "32", "64", "128"]), default="32",
              show_default=True, help="Threads per 1-D block (small: the input spans several blocks).")
@click.option("--tile", type=click.IntRange(1, 8), default=4, show_default=True,
              help="Side of the 2-D blocks of the tiled kernels.")
@device_option(("cudasim",), "cudasim", "Where the kernels run: cudasim (Numba's CUDA simulator), the only place "
                                        "every thread can be watched. --target is the old name.")
def cli(op, kernel, batch, channels, out_channels, size, kernel_size, stride, padding, dilation, groups, features,
        classes, threads_per_block, tile, device):
    """Watch OP's real CUDA kernel thread by thread and check it (OP: conv2d, max_pool2d, linear, ... or all).

    \b
    numbacnn cuda-check conv2d --kernel 1     the formula kernel: one thread per output
    numbacnn cuda-check conv2d --kernel 2     the tiled kernel: fewer global reads, shared memory, barriers
    numbacnn cuda-check all                   every op and kernel (a minute or two)

    Prints per-thread read/write counts and a last line with the totals, races and out-of-bounds accesses;
    exits 1 when the result differs from the CPU kernels or any race, uninitialised shared read or out-of-bounds
    access was seen.
    """
    ensure_cudasim(device)
    from numbacnn.trace.cuda_check import Sizes, check, ops

    table = ops()
    if op != "all" and op not in table:
        raise click.BadParameter(f"must be one of {', '.join(sorted(table))} or all, got {op!r}", param_hint="'OP'")
    if channels % groups or out_channels % groups:
        raise click.BadParameter(f"must divide --channels ({channels}) and --out-channels ({out_channels}), got "
                                 f"{groups}", param_hint="'--groups'")
    sizes = Sizes(batch, channels, out_channels, _size(size), kernel_size, stride, padding, dilation, groups,
                  _features(features), classes)
    if op == "all":
        if kernel is not None:
            raise click.BadParameter("cannot be used with OP all (every kernel runs)", param_hint="'--kernel'")
        runs = [(name, k) for name in sorted(table) for k in table[name]]
    else:
        if kernel is not None and kernel not in table[op]:
            raise click.BadParameter(f"{op} has CUDA kernels {', '.join(map(str, table[op]))}, got {kernel}",
                                     param_hint="'--kernel'")
        runs = [(op, kernel)]
    failed = []
    for name, k in runs:
        try:
            report = check(name, k, sizes, threads_per_block=int(threads_per_block), tile=tile)
        except ValueError as exc:
            fail(f"{name}: {exc}", 2)
        if op == "all":
            click.echo(("ok    " if report.ok else "FAIL  ") + report.summary_line())
        else:
            click.echo("\n".join(report.lines()))
        if not report.ok:
            failed.append(f"{name} kernel{report.kernel}")
    if failed:
        fail(f"{len(failed)} kernel(s) failed the check: {', '.join(failed)}", 1)
