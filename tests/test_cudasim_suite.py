"""Runs tests/cudasim in its own process under Numba's CUDA simulator, so the plain `pytest` covers it too.

The simulator has to be switched on (NUMBA_ENABLE_CUDASIM=1) before Numba is imported, hence the subprocess.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="already under the simulator: tests/cudasim runs in this process")
def test_cuda_kernels_pass_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/cudasim", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"tests/cudasim failed under NUMBA_ENABLE_CUDASIM=1 (exit {proc.returncode}):\n{tail}"


def test_cuda_example_runs():
    """examples/cuda_kernels.py: on a GPU, or re-run by itself under the simulator, every check passes."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "cuda_kernels.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"cuda_kernels.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "all GPU results match the CPU" in proc.stdout
    assert "MISMATCH" not in proc.stdout
