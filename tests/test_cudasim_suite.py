"""Runs tests/cudasim in its own process under Numba's CUDA simulator, so the plain `pytest` covers it too.

The simulator has to be switched on (NUMBA_ENABLE_CUDASIM=1) before Numba is imported, hence the subprocess.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


MIN_PASSED = 150  # tests/cudasim had 159 passing (2 skipped: they need a real GPU) when this was written


def summary_counts(output):
    """{"passed": 3, "failed": 1, ...} from pytest's last summary line ("3 passed, 1 failed, 2 skipped in 1.2s")."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?)\b", line)]
    if not lines:
        return {}
    return {word.rstrip("s") if word.startswith("error") else word: int(n)
            for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)",
                                      lines[-1])}


def test_summary_counts_reads_pytests_last_line():
    assert summary_counts("x\n== 3 failed, 150 passed, 2 skipped, 1 error in 9.1s ==") == \
        {"failed": 3, "passed": 150, "skipped": 2, "error": 1}
    assert summary_counts("== 161 skipped in 2.0s ==") == {"skipped": 161}
    assert summary_counts("no summary") == {}


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="already under the simulator: tests/cudasim runs in this process")
def test_cuda_kernels_pass_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/cudasim", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"tests/cudasim failed under NUMBA_ENABLE_CUDASIM=1 (exit {proc.returncode}):\n{tail}"
    counts = summary_counts(proc.stdout)
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, tail
    # a run that skips everything (or most of it) exits 0 too: the kernels must really have been tested
    assert counts.get("passed", 0) >= MIN_PASSED, f"only {counts.get('passed', 0)} passed (at least {MIN_PASSED} " \
                                                  f"expected):\n{tail}"


def test_cuda_example_runs():
    """examples/cuda_kernels.py: on a GPU, or re-run by itself under the simulator, every check passes."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "cuda_kernels.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"cuda_kernels.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "all GPU results match the CPU" in proc.stdout
    assert "MISMATCH" not in proc.stdout
