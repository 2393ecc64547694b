"""Start-up of the command line: `numbacnn --help`, first-ever runs (Numba compiles), later ones.

    python benchmarks/startup.py                     # 7 warm runs; prints a table
    python benchmarks/startup.py --runs 11 --markdown benchmarks/results/startup.md

Wall-clock time of each command as a fresh process (what a learner waits for), median / min / max over the
runs. "first" runs once per repeat with an empty Numba cache (NUMBA_CACHE_DIR points at a new temporary folder), so
it includes compiling every kernel the command uses; it must say so on stderr ("compiling kernels, first run
only"). The targets: --help within 0.5 s, later animations within 3 s (issue #7); the first `animate conv --kernel
edge` within 10 s and the first `train-lenet --epochs 1 --limit 2048` within 15 s (issue #15), on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

COMMAND = [sys.executable, "-m", "numbacnn"]
ANIMATE = ["animate", "conv", "--kernel", "edge"]
TRAIN = ["train-lenet", "--epochs", "1", "--limit", "2048"]
COMPILING = "compiling kernels, first run only"


def timed(args, cwd, env=None, says=None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(COMMAND + args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"`numbacnn {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    if says is not None and says not in proc.stderr:
        sys.exit(f"`numbacnn {' '.join(args)}` compiled without saying {says!r} on stderr:\n{proc.stderr[-2000:]}")
    return wall


def cold(args, work, runs) -> list:
    """Wall-clock seconds of ``runs`` first runs, each on a new empty Numba cache."""
    times = []
    for i in range(runs):
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(work, f"numba-cache-{'-'.join(args[:1])}-{i}"))
        times.append(timed(args, work, env, says=COMPILING))
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="warm runs of each command (default 7)")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--no-first", action="store_true", help="skip the cold-cache runs (5-15 s each)")
    ap.add_argument("--first-runs", type=int, default=3, help="cold-cache runs of each command (default 3)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.first_runs < 1:
        ap.error(f"--runs and --first-runs must be >= 1, got {args.runs} and {args.first_runs}")
    work = tempfile.mkdtemp(prefix="numbacnn-startup-")
    rows = []
    try:
        if not args.no_first:
            rows.append(("`numbacnn animate conv --kernel edge`, first run (empty Numba cache)",
                         cold(ANIMATE, work, args.first_runs), 10.0))
            rows.append(("`numbacnn train-lenet --epochs 1 --limit 2048`, first run (empty Numba cache)",
                         cold(TRAIN, work, args.first_runs), 15.0))
        timed(ANIMATE, work)  # fill the normal cache if it is cold
        for label, cmd, target in [("`numbacnn --help`", ["--help"], 0.5),
                                   ("`numbacnn animate conv --kernel edge`, later runs", ANIMATE, 3.0)]:
            rows.append((label, [timed(cmd, work) for _ in range(args.runs)], target))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"Start-up, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cores} cores, Python "
             f"{sys.version.split()[0]}, {sys.platform}; wall-clock seconds per fresh process", "",
             "| command | runs | median | min | max | target | met |", "|---|---:|---:|---:|---:|---:|---|"]
    for label, times, target in rows:
        med = statistics.median(times)
        lines.append(f"| {label} | {len(times)} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | "
                     f"{target:g} | {'yes' if med <= target else 'no'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        from numbacnn._io import atomic_path

        with atomic_path(args.markdown) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)


if __name__ == "__main__":
    main()
