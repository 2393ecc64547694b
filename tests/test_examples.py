"""Every example script runs, and the book's printed results appear in its output."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BOOK = sorted(EXAMPLES.glob("ch6_*.py"))


def run(path, *args):
    proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.parametrize("path", BOOK, ids=[p.stem for p in BOOK])
def test_book_example_runs(path):
    run(path)


def test_learning_a_kernel_ends_close_to_edge_kernel():
    out = run(EXAMPLES / "ch6_2_convolutions_for_images.py")
    losses = [float(line.split("loss")[1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 5 and losses[-1] < losses[0] and losses[-1] < 0.1
    learned = out.split("learned kernel:")[1].split("\n")[0]
    import numpy as np

    k = np.array([float(v) for v in learned.replace("[", " ").replace("]", " ").split()])
    assert abs(k[0] - 1) < 0.15 and abs(k[1] + 1) < 0.15, k
