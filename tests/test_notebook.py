"""examples/chapter6.ipynb runs top to bottom in a real Jupyter kernel (nbclient) and prints the book's numbers.

Needs the ``test`` extra's nbclient, nbformat and ipykernel; skipped, with the reason, without them.
"""
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "chapter6.ipynb"


def test_notebook_is_stored_without_outputs():
    """The repository keeps the notebook small: outputs (megabytes of embedded frames) are made by running it."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    stored = [k for k, c in enumerate(nb["cells"])
              if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert code and not stored, f"cells {stored} were saved with outputs: clear all outputs in Jupyter, then save"


def _missing():
    import importlib.util

    return [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after running every cell, in a kernel on this Python (sys.executable) with numbacnn importable."""
    if _missing():
        pytest.skip(f"running the notebook needs {', '.join(_missing())} (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("notebook")
    spec = tmp / "jupyter" / "kernels" / "numbacnn-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "numbacnn test", "language": "python"}))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(tmp / "jupyter"))  # this kernel spec first, not a user's "python3"
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        # a failing cell raises CellExecutionError, naming the cell and its traceback
        NotebookClient(nb, kernel_name="numbacnn-test", startup_timeout=300,
                       resources={"metadata": {"path": str(tmp)}}).execute()
    return nb


def _printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def _numbers(text, label):
    """The numbers printed after ``label``: the rest of its line and the following lines without letters."""
    lines = text.split(label, 1)[1].splitlines()
    block = [lines[0]]
    for line in lines[1:]:
        if re.search(r"[A-Za-z]", line):
            break
        block.append(line)
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d*)?(?:e-?\d+)?", " ".join(block))]


def test_every_cell_runs_without_error(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


def test_prints_the_books_values(executed):
    out = _printed(executed)
    assert _numbers(out, "corr2d(X, K):") == [19, 25, 37, 43]  # 6.2.1
    assert _numbers(out, "edges:") == [0, 1, 0, 0, 0, -1, 0] * 6  # 6.2.3
    assert _numbers(out, "the transposed image:") == [0] * 40
    losses = [float(v) for v in re.findall(r"epoch \d+, loss (\S+)", out)]
    assert len(losses) == 5 and losses[-1] < losses[0] and losses[-1] < 0.1  # 6.2.4
    k = _numbers(out, "learned kernel:")
    assert abs(k[0] - 1) < 0.1 and abs(k[1] + 1) < 0.1, k
    shapes = re.findall(r"^3x3, padding 1: \(8, 8\)$|^5x3, padding \(2, 1\): \(8, 8\)$|"
                        r"^3x3, padding 1, stride 2: \(4, 4\)$|^3x5, padding \(0, 1\), stride \(3, 4\): \(2, 2\)$",
                        out, re.M)
    assert len(shapes) == 4, out  # 6.3
    assert _numbers(out, "two input channels:") == [56, 72, 104, 120]  # 6.4
    assert "three output channels: (1, 3, 2, 2)" in out
    assert "1x1 convolution equals the matrix product: True" in out
    assert _numbers(out, "2x2 max pooling:") == [4, 5, 7, 8]  # 6.5
    assert _numbers(out, "2x2 average pooling:") == [2, 3, 5, 6]
    assert _numbers(out, "default stride 3:") == [10]
    assert _numbers(out, "3x3 window, padding 1, stride 2:") == [5, 7, 13, 15]


def test_lenet_cells(executed):
    out = _printed(executed)
    layers = re.findall(r"^(\w+) +output shape: (\(.*\))$", out, re.M)  # 6.6: the book's shape table
    assert layers == [("Conv2d", "(1, 6, 28, 28)"), ("Sigmoid", "(1, 6, 28, 28)"), ("AvgPool2d", "(1, 6, 14, 14)"),
                      ("Conv2d", "(1, 16, 10, 10)"), ("Sigmoid", "(1, 16, 10, 10)"), ("AvgPool2d", "(1, 16, 5, 5)"),
                      ("Flatten", "(1, 400)"), ("Linear", "(1, 120)"), ("Sigmoid", "(1, 120)"), ("Linear", "(1, 84)"),
                      ("Sigmoid", "(1, 84)"), ("Linear", "(1, 10)")]
    losses = [float(v) for v in re.findall(r"step \d+: loss (\S+)", out)]
    assert len(losses) == 6 and losses[-1] < losses[0]
    before = _numbers(out, "before training: test accuracy")[0]
    after = float(re.search(r"after 48 steps: test accuracy (\S+)", out).group(1))
    assert after > before + 0.2, (before, after)  # the few steps learn something worth showing
    assert _numbers(out, "conv2d, fastest vs kernel 1: largest difference")[0] < 1e-5
    diff, largest = _numbers(out, "LeNet, formula kernels vs fast ones: largest difference")
    assert diff <= 1e-5 * max(1.0, largest)  # float32 sums in another order
    assert "GPU and CPU agree: True" in out or "no GPU here: device='cuda' needs an NVIDIA GPU" in out


def test_animations_play_inline_offline(executed):
    """Each viz call shows matplotlib's player with its frames embedded, referencing nothing on the web."""
    html = [o.data["text/html"] for c in executed.cells if c.cell_type == "code" for o in c.outputs
            if "data" in o and "text/html" in o.data]
    assert len(html) == 5
    for page in html:
        assert "<script" in page and page.count("data:image/png;base64") > 1
        assert "://" not in page
