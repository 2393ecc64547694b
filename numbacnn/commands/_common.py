"""What the CLI's commands share (numbacnn.commands._common): the --device option, the output options of every
animation, parsing of option values, rendering with a progress bar, and download progress bars."""
from __future__ import annotations

import functools
import math
import os
import sys

import click

from numbacnn.cli import fail

DEVICES = ("cpu", "cuda", "cudasim")


def device_option(choices=DEVICES, default="cpu", help=None):
    """--device (also spelled --target, its old name) -> the command's ``device`` argument."""
    return click.option("--device", "--target", "device", type=click.Choice(list(choices)), default=default,
                        show_default=True,
                        help=help or "Device the kernels run on: cpu, cuda (an NVIDIA GPU) or cudasim (Numba's "
                                     "CUDA simulator, no GPU needed). --target is the old name.")


def output_options(f):
    """-o/--output, --fps, --dpi: shared by every animation."""

    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, callback=_checked_output,
                  help="Output file; the extension picks the format: .gif, .mp4 (needs ffmpeg), .html (a page "
                       "with play controls) or .png (a contact sheet of every frame). Default: a descriptive "
                       "name in the current folder.")
    @click.option("--fps", type=FiniteFloat(min=0.1, max=60), default=None,
                  help="Frames per second (default depends on the animation).")
    @click.option("--dpi", type=click.IntRange(40, 300), default=100, show_default=True, help="Pixels per inch.")
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)

    return wrapper


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (FloatRange lets nan through: every comparison is False)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


OUTPUT_HINT = "'-o' / '--output'"


def _checked_output(ctx, param, value):
    """-o's callback: a given path is checked while the options are parsed, before any work."""
    if value is not None and not ctx.resilient_parsing:
        if not str(value).strip():
            raise click.BadParameter(f"{value!r} is empty: give a file name such as out.gif", param_hint=OUTPUT_HINT)
        check_output(value)
    return value


def check_path(path, hint=OUTPUT_HINT, suffixes=None):
    """Any output file the CLI writes (numbacnn._paths): a folder that is missing or takes no new file, or a
    wrong extension, is a usage error of the option ``hint`` (exit 2) naming the path; nothing is created."""
    from numbacnn._paths import OutputPathError, check_output_path

    try:
        return check_output_path(path, suffixes)
    except OutputPathError as exc:
        raise click.BadParameter(str(exc), param_hint=hint)


def path_callback(suffixes=None):
    """A click callback for an output-file option: the path is checked (check_path) while the options are
    parsed, before the command's work starts; the error names the option as the user spelled it."""

    def callback(ctx, param, value):
        if value is not None and not ctx.resilient_parsing:
            check_path(value, param.get_error_hint(ctx), suffixes)
        return value

    return callback


def check_output(path):
    """Validate an animation's -o before any work: a bad path or an unknown format -> usage error (2); a missing
    tool (ffmpeg for .mp4) -> failure (1)."""
    from numbacnn.viz._save import FORMATS, SaveError, check_output

    check_path(path, suffixes=FORMATS)
    try:
        check_output(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=OUTPUT_HINT)
    except SaveError as exc:
        fail(str(exc), 1)


def check_frames_fit(anim):
    """Refuse (usage error naming --dpi) an animation whose rendered frames, (F, H, W, 3) bytes held in memory
    until written, would pass numbacnn.limits' array limit (4 GiB unless NUMBACNN_MAX_ARRAY_BYTES says
    otherwise): e.g. 1443 windows at --dpi 300 would take 19 GB."""
    from numbacnn.limits import get_limits

    w, h = anim.fig.canvas.get_width_height()
    need = len(anim) * w * h * 3
    limit = get_limits()["max_array_bytes"]
    if need > limit:
        raise click.BadParameter(f"{anim.fig.dpi:g} would render {len(anim)} frames of {w}x{h} pixels, "
                                 f"{need / 2**30:.1f} GiB in memory, above the limit of {limit / 2**30:.1f} GiB "
                                 "(NUMBACNN_MAX_ARRAY_BYTES): use a smaller --dpi or fewer frames",
                                 param_hint="'--dpi'")


def save_animation(anim, path, fps):
    """Check the frames fit in memory (check_frames_fit), render them with a progress bar, write the file, print
    its path."""
    from numbacnn.viz._save import SaveError

    check_frames_fit(anim)
    try:
        with click.progressbar(length=len(anim), label=f"rendering {len(anim)} frames", file=sys.stderr) as bar:
            out = anim.save(path, fps=fps, progress=bar.update, workers=None)
    except (SaveError, ValueError) as exc:  # ValueError: the target became a folder or device meanwhile (_io)
        fail(str(exc), 1)
    except OSError as exc:
        fail(f"cannot write {path!r}: {exc.strerror or exc}", 1)
    anim.close()
    click.echo(os.path.abspath(out))


def run_kernels(fn, *args):
    """``fn(*args)``, the kernels, run beside matplotlib's loading (numbacnn.speedups.run_beside).

    Numba's start-up and matplotlib's take about the same time and do not depend on each other; on two
    cores this overlap takes ~0.5 s off every animation (NUMBACNN_SPEEDUPS=0: one after the other).
    fn's exceptions are raised here.
    """
    from numbacnn import speedups

    job = speedups.run_beside(saying_when_compiling, fn, *args)
    from numbacnn import viz

    viz.preload()
    return job.result()


def saying_when_compiling(fn, *args):
    """``fn(*args)``; when Numba compiles a numbacnn kernel meanwhile (a cold cache: first run only), say so on
    stderr as it starts, and how long it took. Loading compiled kernels from the cache says nothing."""
    import time

    from numba.core import event

    class Notice(event.Listener):
        started = None

        def on_start(self, ev):
            if self.started is None and ev.data["dispatcher"].py_func.__module__.startswith("numbacnn."):
                self.started = time.perf_counter()
                click.echo("compiling kernels, first run only...", err=True)

        def on_end(self, ev):
            pass

    notice = Notice()
    with event.install_listener("numba:compile", notice):
        result = fn(*args)
    if notice.started is not None:
        click.echo(f"compiling kernels: done in {time.perf_counter() - notice.started:.1f} s", err=True)
    return result


def load_trace(path):
    """A trace file or folder (numbacnn.trace.load); a bad one ends the command with its message."""
    from numbacnn.trace import TraceError, load

    try:
        return load(path)
    except (TraceError, OSError) as exc:
        fail(str(exc), 1)


def parse(fn, value, hint):
    """``fn(value)``, its ValueError shown as a usage error of the option ``hint``."""
    try:
        return fn(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint)


MAX_INT = 2**31 - 1  # the largest stride/padding/... accepted: index arithmetic stays far inside int64


def int_pair(text, name, minimum, maximum=MAX_INT):
    """'2' -> 2, '2,1' -> (2, 1): the value of option --``name``, each int in [``minimum``, ``maximum``]."""
    try:
        parts = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise click.BadParameter(f"must be an int or two ints like 2,1, got {text!r}", param_hint=f"'--{name}'")
    if len(parts) not in (1, 2) or min(parts) < minimum:
        raise click.BadParameter(f"must be one or two ints >= {minimum}, got {text!r}", param_hint=f"'--{name}'")
    if max(parts) > maximum:
        raise click.BadParameter(f"must be one or two ints <= {maximum}, got {text!r}", param_hint=f"'--{name}'")
    return parts[0] if len(parts) == 1 else tuple(parts)


def name_suffix(**opts):
    """The options that differ from their defaults, for a default file name: s=2, p="1,0" -> '-s2-p1x0'."""
    return "".join(f"-{k}{str(v).replace(',', 'x').replace(' ', '').strip('()')}" for k, v in opts.items()
                   if v not in (None, False, 0, 1, "0", "1", (1, 1), (0, 0)))


class DownloadBars:
    """A click progress bar per downloaded file, for numbacnn.data's ``progress(name, done, total)`` callback.

    ``with DownloadBars() as bars: load_fashion_mnist(..., progress=bars)``; a transfer that starts again
    (done == 0: the next file, or the same file from another mirror) gets a new bar.
    """

    def __init__(self):
        self._bar = None
        self._done = 0

    def __call__(self, name, done, total):
        if done == 0:  # numbacnn.data calls with 0 first
            self.close()
            if total is None:  # the server did not say how much: a line instead of a bar
                click.echo(f"downloading {name}", err=True)
                return
            self._bar = click.progressbar(length=total, label=f"downloading {name}", file=sys.stderr)
            self._bar.__enter__()
            self._done = 0
        if self._bar is not None:
            self._bar.update(done - self._done)
            self._done = done

    def close(self):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
