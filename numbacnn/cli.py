"""The ``numbacnn`` command (numbacnn.cli): a click group whose subcommands load lazily (``--help`` is instant).

Each subcommand lives in ``numbacnn/commands/<module>.py`` as a click command named ``cli``.
User mistakes end with a one-line message and exit code 2 (usage) or 1 (failure), never a traceback.
"""
from __future__ import annotations

import importlib
import os
import sys

import click

# command name -> (module under numbacnn.commands, one-line help shown by `numbacnn --help`)
COMMANDS = {
    "animate": ("animate", "Animate what the kernels compute: conv, pool, learn-kernel, sgd, features, cuda-grid."),
    "cuda-check": ("cuda_check", "Watch a CUDA kernel thread by thread in the simulator: counts, races, bounds."),
    "explore": ("explore", "Write an interactive page (one HTML file): conv, pool, sgd, or a RUN.nctrace."),
    "demo": ("demo", "Run the book's edge-detection cross-correlation end to end and print it."),
    "train-lenet": ("train_lenet", "Train LeNet on Fashion-MNIST (D2L 6.6) with numbacnn's kernels, on CPU or GPU."),
    "trace": ("trace", "Inspect trace files (info) and export their arrays to .npz (export)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"numbacnn.commands.{COMMANDS[name][0]}")
        return module.cli

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numbacnn")
    except PackageNotFoundError:
        return "0.1.0"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="numbacnn")
def main():
    """numbacnn: see how a convolutional network computes and learns.

    Numba kernels (CPU and CUDA) that compute exactly what PyTorch computes,
    traces of everything they do, and animations drawn from those traces.
    """


def ensure_cudasim(device: str) -> None:
    """For ``--device cudasim``: re-run this process with NUMBA_ENABLE_CUDASIM=1 unless numba is not loaded yet.

    The simulator must be switched on before Numba is imported; a fresh process is the reliable way.
    """
    if device != "cudasim" or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return
    if "numba" not in sys.modules:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        return
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "numbacnn"] + sys.argv[1:], env)


def fail(message: str, code: int = 1):
    """End a command with a clear message and no traceback (1: failure, 2: usage error)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def entry():
    """The console script (``numbacnn``, ``python -m numbacnn``): run ``main``, then end the process.

    It ends through numbacnn.speedups.end_process: os._exit after flushing, skipping interpreter tear-down
    (sys.exit with NUMBACNN_SPEEDUPS=0). Tests call ``main`` through click's runner, which this does not affect.
    """
    from numbacnn import speedups

    try:
        main(prog_name="numbacnn")
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    speedups.end_process(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
