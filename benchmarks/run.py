"""numbacnn against PyTorch, side by side: every LeNet-shaped op, a LeNet training step and epoch.

    python benchmarks/run.py --device cpu [--json out.json] [--markdown [out.md]]
    python benchmarks/run.py --device cuda

Same shapes (batch 256), same data, warm-up (JIT compilation) excluded, the two libraries timed in
turns and the median of the repeats reported. PyTorch is optional: without it, numbacnn's figures alone.
The machine's float32 matrix-product rate is measured in the same run as the reference peak.
"""
from __future__ import annotations

import os
import sys

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on some machines for old OpenBLAS builds; they slow a current
# numpy (and so the peak measured here). Drop them for this process only, before numpy is imported.
if ("--keep-openblas-env" not in sys.argv and os.environ.get("NUMBACNN_BENCH_REEXEC") != "1"
        and any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["NUMBACNN_BENCH_REEXEC"] = "1"
    env["NUMBACNN_BENCH_DROPPED"] = ",".join(k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", "--target", dest="target", choices=("cpu", "cuda"), default="cpu",
                   help="where numbacnn and torch run (--target: the pre-0.2 name)")
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per op and library (median reported)")
    p.add_argument("--epoch-repeats", type=int, default=3, help="timed epochs per variant and library")
    p.add_argument("--no-epoch", action="store_true", help="skip the Fashion-MNIST epochs")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images in the epoch rows")
    p.add_argument("--only", default=None, help="only rows whose name contains this text")
    p.add_argument("--threads", type=int, default=None, help="threads for numbacnn and torch (default: all cores)")
    p.add_argument("--clock", choices=tuple(timing.CLOCKS), default="wall",
                   help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a busy machine "
                        "(use with --threads 1: waiting threads that spin count too)")
    p.add_argument("--no-torch", action="store_true", help="numbacnn's figures alone, even if torch is installed")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", metavar="PATH", nargs="?", const="-",
                   help="print the table as Markdown (or write it to PATH)")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (dropped by default, for this run only)")
    p.add_argument("--allow-simulator", action="store_true", help=argparse.SUPPRESS)  # smoke tests only
    args = p.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.epoch_repeats < 1:
        p.error("--batch, --repeats and --epoch-repeats must be positive")
    return args


def check_cuda(args):
    """Exit with a clear message unless a real GPU (or, for smoke tests, the simulator) is there."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and not args.allow_simulator:
        sys.exit("error: --device cuda times a real GPU; NUMBA_ENABLE_CUDASIM=1 is set, and the simulator's "
                 "timings mean nothing. Unset it, or use --device cpu.")
    try:
        from numbacnn.cuda import require_gpu
        require_gpu()
    except Exception as exc:  # NoGPUError, or numba-cuda missing
        sys.exit(f"error: {exc}\n"
                 f"Run `python benchmarks/run.py --device cpu` on this machine instead.")


def load_torch(args):
    if args.no_torch:
        return None, "not used (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "not installed"
    if args.target == "cuda" and not torch.cuda.is_available():
        return None, f"{torch.__version__} without CUDA (numbacnn alone)"
    return torch, torch.__version__


def environment(args, torch, torch_note, threads):
    import numba
    import numpy as np

    import numbacnn

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "target": args.target,
        "cpu": timing.cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numbacnn": numbacnn.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "numpy_blas": timing.blas_info(),
        "torch": torch_note,
        "openblas_env_dropped": os.environ.get("NUMBACNN_BENCH_DROPPED", ""),
        "openblas_env_kept": timing.openblas_env(),
        "batch": args.batch,
        "repeats": args.repeats,
        "clock": args.clock,
        "load_average_start": _loadavg(),
    }
    if args.target == "cuda":
        from numba import cuda

        name = getattr(cuda.get_current_device(), "name", "Numba CUDA simulator")
        env["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    return env


def _loadavg():
    """The 1-minute load average (how busy the machine was), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def run_cases(cases, args, be):
    rows = []
    for case in cases:
        if args.only and args.only.lower() not in case.name.lower():
            continue
        heavy = case.group == "epoch"
        try:
            t_nb, t_th = timing.alternate(
                [case.nb, case.torch], [be.nb_sync, be.torch_sync],
                warmup=0 if heavy else 2, repeats=args.epoch_repeats if heavy else args.repeats,
                clock=timing.CLOCKS[args.clock])
            err = None
        except NotImplementedError as exc:  # an op still being written
            t_nb = t_th = None
            err = f"not implemented: {exc}"
        row = {"group": case.group, "name": case.name, "shape": case.shape, "flops": case.flops,
               "examples": case.examples, "numbacnn_s": t_nb, "torch_s": t_th, "error": err}
        rows.append(row)
        print(format_row(row, args._peak), flush=True)
    return rows


def derived(row, peak):
    """speed-up (torch / numbacnn), GFLOP/s and fraction of the peak, examples/s of both."""
    out = {}
    t_nb, t_th = row["numbacnn_s"], row["torch_s"]
    if t_nb and t_th:
        out["speedup"] = t_th / t_nb
    for who, t in (("numbacnn", t_nb), ("torch", t_th)):
        if t and row["flops"]:
            out[f"{who}_gflops"] = row["flops"] / t / 1e9
            if peak:
                out[f"{who}_peak_fraction"] = out[f"{who}_gflops"] / peak
        if t and row.get("examples"):
            out[f"{who}_examples_per_s"] = row["examples"] / t
    return out


def _ms(t):
    return "-" if t is None else f"{t * 1e3:9.3f}"


def format_row(row, peak):
    d = derived(row, peak)
    if row["error"]:
        return f"{row['name']:<30} {row['shape']:<34} {row['error']}"
    sp = f"{d['speedup']:6.2f}x" if "speedup" in d else "      -"
    frac = f"{100 * d['numbacnn_peak_fraction']:5.1f}%" if "numbacnn_peak_fraction" in d else "     -"
    ex = f"  {d['numbacnn_examples_per_s']:,.0f} vs {d.get('torch_examples_per_s', 0):,.0f} ex/s" \
        if "numbacnn_examples_per_s" in d else ""
    return f"{row['name']:<30} {row['shape']:<34} {_ms(row['numbacnn_s'])} ms {_ms(row['torch_s'])} ms {sp} {frac}{ex}"


def markdown(result):
    env, peak = result["environment"], result["peak_gflops"]
    lines = [f"numbacnn vs PyTorch, `--device {env['target']}`, {env['date']}", "",
             f"- machine: {env.get('gpu', env['cpu'])}" + (f" (host: {env['cpu']})" if "gpu" in env else "")
             + f", {env['cores']} cores, {env['threads']} threads",
             f"- numbacnn {env['numbacnn']}, numba {env['numba']}, numpy {env['numpy']} ({env['numpy_blas']}), "
             f"torch {env['torch']}, Python {env['python']}",
             f"- peak: float32 matrix product " + ", ".join(f"{k} {v:.1f}" for k, v in result["peaks"].items())
             + f" GFLOP/s; the % columns are of {peak:.1f} GFLOP/s" if peak else "- peak: not measured",
             f"- batch {env['batch']}, median of {env['repeats']} alternating calls ("
             + (f"epochs: {result['epoch_repeats']}" if result.get("epoch_repeats") else "no epochs")
             + f"), {env['clock']} clock, warm-up and JIT compilation excluded",
             f"- command: `{env['command']}`", ""]
    lines += [f"- note: {n}" for n in result["notes"]]
    lines += ["", "| what | shapes | numbacnn ms | torch ms | speed-up (torch/numbacnn) | numbacnn GFLOP/s "
              "| numbacnn % peak | torch % peak | examples/s (numbacnn / torch) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        d = derived(row, peak)
        if row["error"]:
            lines.append(f"| {row['name']} | {row['shape']} | {row['error']} | | | | | | |")
            continue

        def f(key, fmt):
            return fmt.format(d[key]) if key in d else "-"
        ex = (f"{d['numbacnn_examples_per_s']:,.0f} / " + f("torch_examples_per_s", "{:,.0f}")) \
            if "numbacnn_examples_per_s" in d else ""
        lines.append(f"| {row['name']} | {row['shape']} | {_ms(row['numbacnn_s']).strip()} | "
                     f"{_ms(row['torch_s']).strip()} | {f('speedup', '{:.2f}x')} | {f('numbacnn_gflops', '{:.1f}')} | "
                     f"{f('numbacnn_peak_fraction', '{:.1%}')} | {f('torch_peak_fraction', '{:.1%}')} | {ex} |")
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".bench-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    if args.target == "cuda":
        check_cuda(args)
    import numba

    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch, torch_note = load_torch(args)
    if torch is not None:
        torch.set_num_threads(threads)
    from ops import Backend, op_cases
    from training import lenet_train_flops, training_cases

    be = Backend(args.target, torch)
    env = environment(args, torch, torch_note, threads)
    notes = []
    print(f"numbacnn benchmark, target {args.target}: {env.get('gpu', env['cpu'])}, {threads} threads, "
          f"torch {torch_note}", flush=True)
    if env["openblas_env_dropped"]:
        notes.append(f"dropped {env['openblas_env_dropped']} for this run (they slow a current OpenBLAS)")
    peaks = timing.matmul_peak(torch, device=args.target) if args.only is None or args.only == "peak" else {}
    peak = max(peaks.values()) if peaks else None
    args._peak = peak
    print("float32 matmul peak: " + (", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()) or "skipped"),
          flush=True)
    print(f"{'what':<30} {'shapes':<34} {'numbacnn':>12} {'torch':>12} {'speedup':>7} {'%peak':>6}", flush=True)
    rows = run_cases(op_cases(be, args.batch), args, be)
    rows += run_cases(training_cases(be, args.batch, epoch=not args.no_epoch, limit=args.limit, notes=notes),
                      args, be)
    env["load_average_end"] = _loadavg()
    if os.cpu_count() and max(env["load_average_start"] or 0, env["load_average_end"] or 0) > os.cpu_count():
        notes.append(f"the machine was busy (1-minute load average {env['load_average_start']} at the start, "
                     f"{env['load_average_end']} at the end, {os.cpu_count()} cores): timings are noisy")
    for n in notes:
        print("note:", n)
    result = {"environment": env, "peaks": peaks, "peak_gflops": peak, "notes": notes,
              "lenet_flops_per_example": lenet_train_flops(), "epoch_repeats": None if args.no_epoch else args.epoch_repeats,
              "rows": [dict(r, **derived(r, peak)) for r in rows]}
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=1) + "\n")
    if args.markdown:
        md = markdown(result)
        if args.markdown == "-":
            print()
            print(md)
        else:
            write_atomic(args.markdown, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
