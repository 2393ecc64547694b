"""Mutation check (tests/mutation/run.py): apply each deliberate bug of mutations.py in a copy, run its tests.

    python tests/mutation/run.py                   every mutation; a markdown table on stdout
    python tests/mutation/run.py --list            the mutations, one a line
    python tests/mutation/run.py --only NAME ...   some of them (repeat --only, or NAME,NAME)
    python tests/mutation/run.py --report FILE     also write the table to FILE

The shared working tree is never touched: the files git knows (tracked, and untracked ones not ignored) are
copied to a temporary folder, with the Numba cache files beside them (so unchanged kernels are not compiled
again; Numba recompiles a changed file's kernels by its own timestamp check, and the caches of the files that
import the mutated one are left out, since Numba does not follow imports). Each mutation is applied to that
copy, ``python -m pytest -x -q -p no:cacheprovider <its tests>`` runs there with this interpreter
(sys.executable: the same .venv) and PYTHONPATH pointing at the copy, and the file is put back.

A first run of each mutation's tests without the mutation (the baseline; --no-baseline skips it) proves they
pass, so a red run means the mutation was caught. Results: caught (a test failed), survived (all passed),
error (snippet not found or found a different number of times, the baseline fails, nothing collected, time-out).
Not part of the test suite: slow (minutes per mutation on two cores).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import MUTATIONS  # noqa: E402


def repo_files(root):
    """Paths (relative) that git tracks or would track: the copy holds nothing ignored (no .venv, no caches)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return sorted({p for p in out.split("\0") if p and (root / p).is_file()})


def _importers(root, files, module_path):
    """Python files whose imports name the mutated module (their Numba caches may hold its old code inlined)."""
    stem = Path(module_path).stem
    pattern = re.compile(rf"^\s*(from|import)\s.*\b{re.escape(stem)}\b", re.M)
    return {f for f in files if f.endswith(".py") and f != module_path and pattern.search((root / f).read_text())}


def copy_tree(root, dest, files, skip_caches_of=()):
    """Copy files (keeping mtimes, which Numba's cache checks) and the Numba caches of the .py files among them."""
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    for rel in files:
        if not rel.endswith(".py") or rel in skip_caches_of:
            continue
        src = (root / rel).parent / "__pycache__"
        stem = Path(rel).stem + "."
        if src.is_dir():
            for cache in src.iterdir():
                if cache.name.startswith(stem) and cache.suffix in (".nbi", ".nbc"):
                    (dest / rel).parent.joinpath("__pycache__").mkdir(exist_ok=True)
                    shutil.copy2(cache, (dest / rel).parent / "__pycache__" / cache.name)


def run_tests(copy, tests, env_extra, timeout):
    """(exit code or None on time-out, seconds, output) of pytest in the copy."""
    env = dict(os.environ, PYTHONPATH=str(copy), **env_extra)
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, time.monotonic() - t0, out
    return proc.returncode, time.monotonic() - t0, proc.stdout + proc.stderr


def first_failure(output):
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0][:140]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:140] if lines else ""


def check_imports_copy(copy):
    """The copy's numbacnn is the one imported there (not the editable install's checkout)."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    out = subprocess.run([sys.executable, "-c", "import numbacnn; print(numbacnn.__file__)"], cwd=copy, env=env,
                         capture_output=True, text=True)
    where = out.stdout.strip()
    if not where.startswith(str(copy)):
        raise SystemExit(f"the copy imports numbacnn from {where or out.stderr.strip()!r}, not from {copy}")


def apply(text, m):
    """text with the mutation applied, or an error string."""
    found = text.count(m["old"])
    if found == 0:
        return None, "snippet not found (refresh mutations.py)"
    if found != m.get("count", 1):
        return None, f"snippet found {found} times, expected {m.get('count', 1)} (refresh mutations.py)"
    return text.replace(m["old"], m["new"]), None


def mutate_and_run(m, copy, root, baseline, timeout):
    """One result row: dict(name, result, seconds, detail)."""
    row = dict(name=m["name"], path=m["path"], what=m["what"], tests=" ".join(m["tests"]), seconds=0.0)
    source = root / m["path"]
    if not source.is_file():
        return dict(row, result="error", detail=f"{m['path']} does not exist (refresh mutations.py)")
    mutated, error = apply(source.read_text(), m)
    if error:
        return dict(row, result="error", detail=error)
    key = (tuple(m["tests"]), tuple(sorted(m.get("env", {}).items())))
    if baseline is not None:
        if key not in baseline:
            baseline[key] = run_tests(copy, m["tests"], m.get("env", {}), timeout)
        code, _, out = baseline[key]
        if code != 0:
            return dict(row, result="error", detail=f"baseline (no mutation) is red: {first_failure(out)}")
    target = copy / m["path"]
    target.write_text(mutated)
    try:
        code, seconds, out = run_tests(copy, m["tests"], m.get("env", {}), timeout)
    finally:
        shutil.copy2(source, target)  # put the original back (its mtime too)
    row["seconds"] = seconds
    if code is None:
        return dict(row, result="error", detail=f"time-out after {timeout} s")
    if code == 0:
        return dict(row, result="survived", detail=first_failure(out))
    if code in (1, 2):  # 1: a test failed; 2: collection failed (the mutation broke an import)
        return dict(row, result="caught", detail=first_failure(out))
    return dict(row, result="error", detail=f"pytest exit {code}: {first_failure(out)}")


def table(rows):
    counts = {k: sum(r["result"] == k for r in rows) for k in ("caught", "survived", "error")}
    lines = [f"{len(rows)} mutations: {counts['caught']} caught, {counts['survived']} survived, "
             f"{counts['error']} errors", "",
             "| mutation | file | result | s | bug | tests | first failure / detail |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cell = {k: str(v).replace("|", "\\|") for k, v in r.items()}
        lines.append(f"| {cell['name']} | {cell['path']} | **{cell['result']}** | {r['seconds']:.0f} | "
                     f"{cell['what']} | {cell['tests']} | {cell['detail']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run only this mutation (repeat, or NAME,NAME)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--report", type=Path, help="also write the markdown table to this file")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of each test set")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per pytest run (default 1800)")
    ap.add_argument("--keep", action="store_true", help="keep the copy (its path is printed)")
    args = ap.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m['name']:28} {m['path']:34} {m['what']}")
        return 0
    names = [n for item in args.only for n in item.split(",") if n]
    unknown = sorted(set(names) - {m["name"] for m in MUTATIONS})
    if unknown:
        ap.error(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    chosen = [m for m in MUTATIONS if not names or m["name"] in names]
    files = repo_files(ROOT)
    stale = set()
    for m in chosen:
        stale |= {m["path"]} | _importers(ROOT, files, m["path"])
    tmp = Path(tempfile.mkdtemp(prefix="numbacnn-mutation-"))
    copy = tmp / "repo"
    try:
        copy_tree(ROOT, copy, files, skip_caches_of=stale)
        check_imports_copy(copy)
        print(f"copy: {copy} ({len(files)} files)", file=sys.stderr)
        baseline = None if args.no_baseline else {}
        rows = []
        for m in chosen:
            print(f"{m['name']} ...", file=sys.stderr, flush=True)
            rows.append(mutate_and_run(m, copy, ROOT, baseline, args.timeout))
            print(f"  {rows[-1]['result']}: {rows[-1]['detail']}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report = table(rows)
    print(report)
    if args.report:
        args.report.write_text(report)
    return 0 if all(r["result"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
