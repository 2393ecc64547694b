"""Every example script runs, and the book's printed results appear in its output."""
import re
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


def _numbers(out, label):
    """The numbers printed after ``label`` (on its line and the following ones), up to the next label line."""
    text = out.split(label, 1)[1]
    lines = text.splitlines()
    block = [lines[0]] + [line for line in _takewhile_numbers(lines[1:])]
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d*)?", " ".join(block))]


def _takewhile_numbers(lines):
    for line in lines:
        if re.search(r"[A-Za-z]", line):
            return
        yield line


def test_ch6_3_prints_the_books_output_shapes():
    out = run(EXAMPLES / "ch6_3_padding_and_stride.py")
    shapes = [tuple(int(v) for v in re.findall(r"\d+", line.rsplit(":", 1)[1])) for line in out.splitlines()
              if ":" in line]
    assert shapes[:4] == [(8, 8), (8, 8), (4, 4), (2, 2)]  # D2L 6.3: the four comp_conv2d shapes
    assert shapes[4] == (8, 8)  # padding="same" keeps the size


def test_ch6_4_prints_the_books_results():
    out = run(EXAMPLES / "ch6_4_multiple_channels.py")
    assert _numbers(out, "two input channels:") == [56, 72, 104, 120]
    assert _numbers(out, "three output channels:") == [56, 72, 104, 120, 76, 100, 148, 172, 96, 128, 192, 224]
    assert "1x1 convolution equals the matrix product: True" in out


def test_ch6_5_prints_the_books_results():
    out = run(EXAMPLES / "ch6_5_pooling.py")
    assert _numbers(out, "2x2 max pooling:") == [4, 5, 7, 8]
    assert _numbers(out, "2x2 average pooling:") == [2, 3, 5, 6]
    assert _numbers(out, "2x2 min pooling:") == [0, 1, 3, 4]
    assert _numbers(out, "3x3 window, default stride 3:") == [10]
    assert _numbers(out, "3x3 window, padding 1, stride 2:") == [5, 7, 13, 15]
    assert _numbers(out, "2x3 window, padding (0, 1), stride (2, 3):") == [5, 7, 13, 15]
    assert _numbers(out, "two channels in, two channels out:") == [5, 7, 13, 15, 6, 8, 14, 16]
    assert _numbers(out, "global average pooling:") == [7.5, 8.5]


def test_learning_a_kernel_ends_close_to_edge_kernel():
    out = run(EXAMPLES / "ch6_2_convolutions_for_images.py")
    losses = [float(line.split("loss")[1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 5 and losses[-1] < losses[0] and losses[-1] < 0.1
    learned = out.split("learned kernel:")[1].split("\n")[0]
    import numpy as np

    k = np.array([float(v) for v in learned.replace("[", " ").replace("]", " ").split()])
    assert abs(k[0] - 1) < 0.15 and abs(k[1] + 1) < 0.15, k


@pytest.mark.realdata
def test_lenet_example_learns_with_its_default_recipe():
    from numbacnn.data import locate_fashion_mnist

    if locate_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    out = run(EXAMPLES / "lenet.py")
    accs = [float(line.split("test acc ")[1]) for line in out.splitlines() if line.startswith("epoch ")]
    assert len(accs) == 2 and accs[-1] > 0.6, out  # chance is 0.1; the docstring says 0.72
    assert "test accuracy 0.72" in (EXAMPLES / "lenet.py").read_text() and abs(accs[-1] - 0.72) < 0.05
