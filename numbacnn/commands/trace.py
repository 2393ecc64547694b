"""`numbacnn trace` (numbacnn.commands.trace): look inside trace files (``info``), take arrays out (``export``)."""
import click

from ._common import path_callback


def _load(path):
    from numbacnn.cli import fail
    from numbacnn.trace import TraceError, load

    try:
        return load(path)
    except TraceError as exc:
        fail(str(exc), 1)


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def _shape(entry):
    return "x".join(str(v) for v in entry["shape"]) if entry else "-"


@click.group("trace")
def cli():
    """Inspect and export trace files written by the tracer (a model trace folder or an op trace .npz)."""


@cli.command("info")
@click.argument("file", type=click.Path())
@click.option("--verify", is_flag=True, help="Open every chunk and check its arrays against the manifest (shapes, "
              "dtypes, checksums); exit 1 naming each damaged file.")
def info(file, verify):
    """Print a readable summary of FILE: steps, layers, shapes, size on disk, hyperparameters.

    Every chunk the manifest lists is checked to exist with its recorded size (--verify: opened and checked);
    a damaged trace is reported file by file, and the command exits 1."""
    import os

    from numbacnn.cli import fail
    from numbacnn.trace import OpTrace, TraceError

    t = _load(file)
    echo = click.echo
    if isinstance(t, OpTrace):
        echo(f"op trace {file}: {t.op}, {len(t)} windows, {_size(os.path.getsize(file))} on disk")
        for k, v in t.meta.items():
            echo(f"  {k}: {v}")
        echo("arrays:")
        for k, v in t.arrays.items():
            echo(f"  {k:<16} {'x'.join(map(str, v.shape)) or 'scalar':<20} {v.dtype}")
        if verify:  # loading read and checked every array
            echo("verified: every array reads back and matches the header")
        return
    m = t.manifest
    damaged = t.problems(verify)
    try:
        scalars = t.scalars() if not damaged else None
        size = t.size_bytes()
    except TraceError as exc:
        damaged.append(str(exc))
    steps = t.steps
    echo(f"model trace {file} (format version {m['version']}, numbacnn {m.get('numbacnn_version', '?')}, "
         f"created {m.get('created', '?')})")
    state = "complete" if t.complete else "INCOMPLETE (interrupted run: readable up to the last step)"
    echo(f"  state:    {'DAMAGED (see below)' if damaged else state}"
         + (f"; error: {m['error']}" if m.get("error") else ""))
    echo(f"  device:   {m.get('target')}    size on disk: {_size(size)}")
    s = m["sampling"]
    where = f"{steps[0]}..{steps[-1]}" if len(steps) else "none"
    echo(f"  steps:    {len(steps)} recorded ({where}; every {s['every']} steps, first {s['samples']} examples "
         f"of each batch)")
    if s.get("probe"):
        echo(f"  probe:    {s['probe']} fixed examples run forward at every recorded step (Trace.probe_map)")
    if scalars is not None and len(scalars["step"]):
        echo(f"  scalars:  {len(scalars['step'])} steps logged; last: step {scalars['step'][-1]}, "
             f"loss {scalars['loss'][-1]:.4f}, acc {scalars['acc'][-1]:.4f}")
    hp = ", ".join(f"{k}={v}" for k, v in sorted(t.hyperparameters.items()) if k != "probe_labels")
    echo(f"  hyperparameters: {hp}")
    if m["layers"]:
        echo("layers (per-example shapes):")
        echo(f"  {'layer':<6}{'type':<18}{'input':<14}{'output':<14}")
        for e in m["layers"]:
            echo(f"  {e['name']:<6}{e['type']:<18}{_shape(e.get('x')):<14}{_shape(e.get('y')):<14}")
    echo("parameters:")
    for e in m["params"]:
        echo(f"  {e['name']:<14}{'x'.join(map(str, e['shape'])):<14}{e['dtype']}")
    if damaged:
        for line in damaged:
            echo(f"  damaged:  {line}", err=True)
        fail(f"{file!r}: the trace is damaged ({len(damaged)} file{'s' if len(damaged) > 1 else ''}: "
             f"{damaged[0]}); the chunks not named are readable", 1)
    if verify:
        echo(f"verified: every chunk ({len(m['steps'])} steps, {len(m['scalars'])} scalar chunks) reads back and "
             f"matches the manifest")


@cli.command("export")
@click.argument("file", type=click.Path())
@click.option("--step", "-s", type=int, default=None, help="Recorded step to export (model traces).")
@click.option("--layer", "-l", default=None, help="Only this layer's arrays (with --step).")
@click.option("--param", "-p", default=None, help="A parameter's value/grad/momentum/update over all recorded steps.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, callback=path_callback((".npz",)),
              help="The .npz file to write (its folder must exist).")
def export(file, step, layer, param, output):
    """Write arrays from FILE to a plain NumPy .npz (np.load reads it; no numbacnn needed).

    Op traces: every array. Model traces: --step S [--layer L] (feature maps and gradients of that step),
    or --param NAME (that parameter over all recorded steps, with a `steps` array).
    """
    from numbacnn.cli import fail
    from numbacnn.trace import OpTrace, TraceError
    from numbacnn.trace.format import save_npz
    from numbacnn.trace.format import PARAM_KINDS

    t = _load(file)
    try:
        if isinstance(t, OpTrace):
            arrays = dict(t.arrays)
        elif param is not None:
            if step is not None or layer is not None:
                fail("--param exports every recorded step: use it without --step / --layer", 2)
            arrays = {"steps": t.steps}
            arrays.update({kind: t.param(param, kind) for kind in PARAM_KINDS})
        elif step is None:
            fail(f"--step is required for a model trace (recorded steps: {t._steps_text()}), or use --param", 2)
        else:
            arrays = t.step_arrays(step)
            if layer is not None:
                index = t._layer_index(layer)
                arrays = {k.rsplit("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"layer/{index}/")}
    except KeyError as exc:
        fail(exc.args[0], 2)
    except TraceError as exc:
        fail(str(exc), 1)
    from numbacnn._io import NotAFileTargetError

    try:
        size = save_npz(output, arrays)
    except OSError as exc:
        fail(f"cannot write {output!r}: {exc.strerror or exc}", 1)
    except NotAFileTargetError as exc:  # became a folder, device or FIFO after the options were checked
        fail(str(exc), 1)
    click.echo(f"wrote {len(arrays)} arrays ({', '.join(sorted(arrays))}) to {output} ({_size(size)})")
