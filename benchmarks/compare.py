"""numbacnn against PyTorch, each library in its own process (benchmarks/compare.py): the headline method.

    python benchmarks/compare.py                                   # both LeNet training steps, 5 rounds x 100
    python benchmarks/compare.py --ops --in-process --markdown benchmarks/results/compare.md
    python benchmarks/compare.py --load 1 --threads 1,2            # under load, numbacnn at 1 and 2 threads
    python benchmarks/compare.py --env OMP_WAIT_POLICY=PASSIVE --nb-env NUMBA_THREADING_LAYER=workqueue

First one check: numbacnn's training step equals PyTorch's (same weights, same batch, one SGD step: the loss and
every updated parameter; without torch, numbacnn's kernel 1); a mismatch stops the run (exit 1). Then one untimed
numbacnn worker fills the kernel cache. Then ``--rounds`` rounds: in each, a fresh process per library (and per
``--threads`` setting; each training step in a process of its own, the op cases together) runs
benchmarks/compare_worker.py, which warms up and times ``--repeats`` calls of each case;
the order of the processes flips every round (numbacnn, torch, torch, numbacnn, ...). Reported per case: the
median over rounds of the per-process medians, their range (min-max), and the ratio torch / numbacnn of the
medians with its range over the worst and best pairing (torch min / numbacnn max .. torch max / numbacnn min).
``--in-process`` adds, per round, one process that alternates both libraries call by call (as run.py does), so
the table shows both ratios side by side. This process imports neither numba nor torch.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "compare_worker.py")
STEP_CASES = ("step-d2l", "step-modern")
DROPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # they slow a current OpenBLAS (see run.py)
# A busy process: a pure-Python loop that ends by itself when its parent goes (its parent id changes).
SPIN = "import os\np = os.getppid()\nwhile os.getppid() == p:\n    for _ in range(200000): pass\n"


def env_pair(text: str):
    """'KEY=VALUE' -> ('KEY', 'VALUE'); argparse's error for anything else."""
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (an environment variable), got {text!r}")
    return key, value


def thread_list(text: str) -> list[int]:
    """'1,2' -> [1, 2]; argparse's error for anything but positive integers."""
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return sorted(set(out))


def parse_args(argv=None):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--cases", default=",".join(STEP_CASES),
                   help="comma list of cases (default: step-d2l,step-modern; op names as benchmarks/ops.py's, "
                        "e.g. conv2-forward, sigmoid-forward-6x28x28)")
    p.add_argument("--ops", action="store_true", help="add every op case of benchmarks/ops.py")
    p.add_argument("--rounds", type=int, default=5, help="rounds of one fresh process per library (default 5)")
    p.add_argument("--repeats", type=int, default=100,
                   help="timed calls per case in each process (default 100: numbacnn's thread choice tries one "
                        "thread in its first steps, a third of 15 steps but 5 %% of an epoch)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per case in each process first (default 2)")
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--threads", type=thread_list, default=[cores],
                   help=f"threads of both libraries, or a list such as 1,2 (each timed; default all cores: {cores})")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="start N busy processes for the whole measurement (default 0; one per spare core is "
                        "issue #15's definition of 'under load')")
    p.add_argument("--env", type=env_pair, action="append", default=[], metavar="KEY=VALUE",
                   help="set in the workers of both libraries (repeatable), e.g. OMP_WAIT_POLICY=PASSIVE")
    p.add_argument("--nb-env", type=env_pair, action="append", default=[], metavar="KEY=VALUE",
                   help="set in numbacnn's workers only (and in-process ones), e.g. NUMBA_THREADING_LAYER=workqueue")
    p.add_argument("--in-process", action="store_true",
                   help="also time both libraries alternating in one process, one such process per round")
    p.add_argument("--no-torch", action="store_true", help="numbacnn alone, even if torch is installed")
    p.add_argument("--rtol", type=float, default=1e-4, help="correctness check: relative tolerance (1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="correctness check: absolute tolerance (1e-5)")
    p.add_argument("--json", metavar="PATH", help="write every raw sample and the summary as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    args = p.parse_args(argv)
    for opt in ("rounds", "repeats", "batch"):
        if getattr(args, opt) < 1:
            p.error(f"argument --{opt}: must be at least 1, got {getattr(args, opt)}")
    for opt in ("rtol", "atol"):
        if not getattr(args, opt) >= 0 or getattr(args, opt) == float("inf"):
            p.error(f"argument --{opt}: must be a finite number >= 0, got {getattr(args, opt)}")
    for opt in ("warmup", "load"):
        if getattr(args, opt) < 0:
            p.error(f"argument --{opt}: must be at least 0, got {getattr(args, opt)}")
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()] + (["ops"] if args.ops else [])
    if not args.case_list:
        p.error(f"argument --cases: no case named in {args.cases!r}")
    for opt in ("json", "markdown"):
        if getattr(args, opt):
            from numbacnn._paths import OutputPathError, check_output_path

            try:
                check_output_path(getattr(args, opt))
            except OutputPathError as exc:
                p.error(f"argument --{opt}: {exc}")
    args.torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    return args


def schedule(rounds: int, libs, threads, in_process: bool = False):
    """[(round, lib, threads)] in running order: per round every lib at every thread count (then 'both' for
    ``in_process``), the whole round's order reversed every other round: nb, torch | torch, nb | nb, torch ..."""
    jobs = [(lib, t) for t in threads for lib in list(libs) + (["both"] if in_process else [])]
    out = []
    for r in range(rounds):
        out += [(r, lib, t) for lib, t in (jobs if r % 2 == 0 else jobs[::-1])]
    return out


def process_groups(case_list):
    """The cases split into the processes that run them: each training step alone in a fresh process (what a
    process did before, building the op cases' arrays for one, changes malloc's state and so a step's speed by up
    to 30 %), the op cases together in one."""
    steps = [c for c in case_list if c in STEP_CASES]
    others = [c for c in case_list if c not in STEP_CASES]
    return [[c] for c in steps] + ([others] if others else [])


def worker_env(base, env_pairs, nb_env_pairs, lib: str) -> dict:
    """The worker's environment: ``base`` without the OpenBLAS variables, plus --env, plus --nb-env for every
    worker that runs numbacnn (numbacnn, both, check, warm-up)."""
    env = {k: v for k, v in base.items() if k not in DROPPED_ENV}
    env.update(env_pairs)
    if lib != "torch":
        env.update(nb_env_pairs)
    return env


def summarize(values) -> dict:
    """Median, min, max and count of per-process medians."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio(torch_s: dict, nb_s: dict) -> dict:
    """torch / numbacnn of the medians (above 1: numbacnn faster), with the range of the worst and best pairing:
    torch's fastest over numbacnn's slowest .. torch's slowest over numbacnn's fastest."""
    return {"median": torch_s["median"] / nb_s["median"], "min": torch_s["min"] / nb_s["max"],
            "max": torch_s["max"] / nb_s["min"]}


def aggregate(runs) -> list[dict]:
    """One row per (case, threads): the summaries of each library's per-process medians, separate processes and
    in one process, their ratios, examples/s, and numbacnn's speed against its own 1-thread figure."""
    groups, order = {}, []
    for run in runs:
        mode = "in-process" if run["worker"] == "both" else "separate"
        key = (run["case"], run["threads"])
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key].setdefault((mode, run["lib"]), []).append(run["median"])
    examples = {run["case"]: run.get("examples") for run in runs}
    rows = []
    for case, threads in order:
        g = {f"{mode}:{lib}": summarize(v) for (mode, lib), v in groups[(case, threads)].items()}
        row = {"case": case, "threads": threads, "examples": examples[case], **g}
        for mode in ("separate", "in-process"):
            if f"{mode}:torch" in g and f"{mode}:numbacnn" in g:
                row[f"{mode}:ratio"] = ratio(g[f"{mode}:torch"], g[f"{mode}:numbacnn"])
        one = groups.get((case, 1), {}).get(("separate", "numbacnn"))
        if one and threads != 1 and "separate:numbacnn" in g:
            row["numbacnn_vs_1_thread"] = statistics.median(one) / g["separate:numbacnn"]["median"]
        rows.append(row)
    return rows


def run_worker(lib: str, cases, threads: int, args, warmup=None, repeats=None) -> list[dict]:
    """Start compare_worker.py in a fresh process and return its JSON lines; SystemExit with its message when it
    fails (exit 2 for an unknown case, 1 otherwise)."""
    cmd = [sys.executable, WORKER, "--lib", lib, "--cases", ",".join(cases), "--threads", str(threads),
           "--batch", str(args.batch), "--warmup", str(args.warmup if warmup is None else warmup),
           "--repeats", str(args.repeats if repeats is None else repeats), "--rtol", repr(args.rtol),
           "--atol", repr(args.atol)] + (["--no-torch"] if lib == "check" and not args.torch else [])
    proc = subprocess.run(cmd, env=worker_env(os.environ, args.env, args.nb_env, lib), capture_output=True,
                          text=True, cwd=os.path.dirname(HERE))
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 1 and lines and lines[0].get("type") == "check":
        return lines  # the caller reports the mismatch
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-15:]
        if proc.returncode == 2 and tail and "error:" in tail[-1]:  # a usage mistake (an unknown case): exit 2
            print(f"error: {tail[-1].split('error: ', 1)[1]}", file=sys.stderr)
            sys.exit(2)
        sys.exit(f"error: the {lib} worker failed (exit {proc.returncode}): {shlex.join(cmd)}\n" + "\n".join(tail))
    return lines


def start_load(n: int):
    """n busy processes (pure-Python loops), each ending by itself if this process dies."""
    return [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL) for _ in range(n)]


def stop_load(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def progress(text: str):
    print(f"compare: {text}", file=sys.stderr, flush=True)


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def environment(args, envs) -> dict:
    import numbacnn  # its package imports neither numba nor torch

    sys.path.insert(0, HERE)
    import timing  # numpy only

    def seen(key, libs):
        return sorted({str(e[key]) for e in envs if e.get(key) is not None and e["lib"] in libs}) or ["-"]
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python benchmarks/compare.py " + shlex.join(sys.argv[1:]),
            "cpu": timing.cpu_name(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(), "numbacnn": numbacnn.__version__,
            "numba": ", ".join(seen("numba", ("numbacnn",))), "numpy": ", ".join(seen("numpy", ("numbacnn", "torch"))),
            "torch": ", ".join(seen("torch", ("torch",))) if args.torch else "not used",
            "threading_layer": ", ".join(seen("threading_layer", ("numbacnn",))),
            "threads": args.threads, "rounds": args.rounds, "repeats": args.repeats, "warmup": args.warmup,
            "batch": args.batch, "load": args.load, "env": dict(args.env), "nb_env": dict(args.nb_env),
            "dropped_env": [k for k in DROPPED_ENV if k in os.environ], "in_process": args.in_process,
            "load_average_end": _loadavg()}


def _fmt_s(s: dict | None) -> str:
    if not s:
        return "-"
    scale, unit = (1e3, "ms") if s["median"] >= 1e-3 else (1e6, "µs")
    return f"{s['median'] * scale:.3g} {unit} ({s['min'] * scale:.3g}-{s['max'] * scale:.3g})"


def _fmt_r(r: dict | None) -> str:
    return f"**{r['median']:.2f}x** ({r['min']:.2f}-{r['max']:.2f})" if r else "-"


def markdown(result) -> str:
    env, check = result["environment"], result["correctness"]
    load = (f"{env['load']} busy process{'es' if env['load'] != 1 else ''} (pure-Python loops) for the whole "
            f"measurement" if env["load"] else "none (quiet machine, as far as this run knows)")
    envs = ", ".join(f"`{k}={v}`" for k, v in env["env"].items()) or "none"
    nb_envs = ", ".join(f"`{k}={v}`" for k, v in env["nb_env"].items()) or "none"
    lines = [f"numbacnn vs PyTorch, each library in its own process, {env['date']}", "",
             f"- machine: {env['cpu']}, {env['cores']} cores ({env['usable_cores']} usable); load: {load}; "
             f"1-minute load average at the end {env['load_average_end']}",
             f"- numbacnn {env['numbacnn']}, numba {env['numba']} (threading layer {env['threading_layer']}), "
             f"numpy {env['numpy']}, torch {env['torch']}, Python {env['python']}",
             f"- threads {', '.join(map(str, env['threads']))}; {env['rounds']} rounds x {env['repeats']} timed calls "
             f"per process after {env['warmup']} warm-up calls; batch {env['batch']}; one fresh process per library "
             f"and round, order flipped every round" + ("; in-process: both libraries alternating call by call in "
                                                        "one more process per round" if env["in_process"] else ""),
             f"- environment of both libraries' workers: {envs}; numbacnn's only: {nb_envs}"
             + (f"; dropped {', '.join(env['dropped_env'])}" if env["dropped_env"] else ""),
             f"- correctness before timing: {check['summary']}",
             f"- command: `{env['command']}`", "",
             "Times: median of the per-process medians (min-max over processes). Ratio: torch / numbacnn (above 1: "
             "numbacnn faster), with the range of the worst and best pairing.", "",
             "| case | threads | numbacnn | torch | ratio, separate processes | ratio, one process "
             "| examples/s numbacnn / torch | numbacnn vs its 1 thread |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        nb, th = row.get("separate:numbacnn"), row.get("separate:torch")
        ex = "-"
        if row["examples"] and nb:
            ex = f"{row['examples'] / nb['median']:,.0f} / " + (f"{row['examples'] / th['median']:,.0f}" if th else "-")
        own = f"{row['numbacnn_vs_1_thread']:.2f}x" if "numbacnn_vs_1_thread" in row else "-"
        lines.append(f"| {row['case']} | {row['threads']} | {_fmt_s(nb)} | {_fmt_s(th)} | "
                     f"{_fmt_r(row.get('separate:ratio'))} | {_fmt_r(row.get('in-process:ratio'))} | {ex} | {own} |")
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    from numbacnn._io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def check_correctness(args) -> dict:
    """The check worker's verdict; SystemExit(1) with the mismatches when numbacnn's step differs."""
    lines = run_worker("check", STEP_CASES, max(args.threads), args)
    check = next(line for line in lines if line.get("type") == "check")
    if not check["ok"]:
        more = len(check["problems"]) - 6
        sys.exit("error: numbacnn's training step differs from the reference (" + check["reference"] + "), nothing "
                 "timed:\n  " + "\n  ".join(check["problems"][:6]) + (f"\n  ... and {more} more" if more > 0 else ""))
    note = "" if args.torch else (" (torch not used)" if args.no_torch else " (torch missing)")
    check["summary"] = (f"one SGD step (lr 0.9, batch {args.batch}) of both LeNet variants from the same weights, "
                        f"loss and every parameter within rtol {args.rtol:g}, atol {args.atol:g} of "
                        f"{check['reference']}{note}: passed, largest difference {check['max_abs_diff']:.2g}")
    return check


def main(argv=None):
    args = parse_args(argv)
    libs = ["numbacnn", "torch"] if args.torch else ["numbacnn"]
    in_process = args.in_process and args.torch
    progress("checking numbacnn's training step against " + ("PyTorch" if args.torch else "its kernel 1")
             + " (on an empty kernel cache, Numba first compiles for about a minute)")
    check = check_correctness(args)
    progress(check["summary"])
    t0 = time.perf_counter()
    run_worker("numbacnn", args.case_list, max(args.threads), args, warmup=1, repeats=1)
    progress(f"untimed numbacnn warm-up worker: {time.perf_counter() - t0:.1f} s (kernels cached)")
    runs, envs = [], []
    load = start_load(args.load)
    try:
        if load:
            progress(f"{len(load)} busy process(es) started")
        jobs = schedule(args.rounds, libs, args.threads, in_process)
        for i, (r, lib, threads) in enumerate(jobs):
            t0 = time.perf_counter()
            for cases in process_groups(args.case_list):
                for line in run_worker(lib, cases, threads, args):
                    if line["type"] == "env":
                        envs.append(line)
                    else:
                        runs.append(dict(line, round=r, worker=lib, threads=threads))
            progress(f"round {r + 1}/{args.rounds}, {lib}, {threads} thread(s): {time.perf_counter() - t0:.1f} s "
                     f"({i + 1}/{len(jobs)} processes)")
    finally:
        stop_load(load)
    if not args.torch:
        progress("torch " + ("not used (--no-torch)" if args.no_torch else "missing") + ": numbacnn alone")
    result = {"environment": environment(args, envs), "correctness": check, "rows": aggregate(runs),
              "runs": runs, "workers": envs}
    text = markdown(result)
    print(text)
    if args.markdown:
        write_atomic(args.markdown, text)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the busy processes are already stopped (main's finally)
        sys.exit("compare: interrupted, nothing written")
