"""`numbacnn animate cuda-grid` from a fresh process (tests/test_animate_cuda_grid.py): the command switches the
simulator on itself, watches the real kernel and draws one frame per (block, barrier phase)."""
import os
import subprocess
import sys

import pytest

SMALL = ["--dpi", "40"]


def _run(*args):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-m", "numbacnn", "animate", "cuda-grid", *args], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.mark.parametrize("args,frames", [
    # 3x5 outputs in 2x2 tiles: 2 x 3 blocks, each: load (phase 0), compute (1), write (2)
    (["--kernel", "2", "--threads", "2"], 2 * 3 * 3),
    # 15 outputs, 4 threads per block: 4 blocks, one phase each (no barrier)
    (["--kernel", "1", "--threads", "4"], 4),
    (["--op", "avg_pool2d", "--threads", "8"], 2),
    # x (3, 6) @ w (5, 6).T in 2x2 tiles: 2 x 3 blocks; k = 6 in steps of 2: (load, compute) x 3, then write
    (["--op", "linear", "--kernel", "2", "--threads", "2"], 2 * 3 * 7),
])
def test_one_frame_per_block_and_phase(tmp_path, args, frames):
    out_file = tmp_path / "grid.gif"
    proc = _run("--size", "3x5", *args, *SMALL, "-o", str(out_file))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out_file.is_file() and str(out_file) in proc.stdout
    from PIL import Image

    with Image.open(out_file) as im:
        assert im.n_frames == frames


@pytest.mark.parametrize("args,message", [
    (["--op", "max_pool2d", "--kernel", "2"], "max_pool2d has kernels 1 here, got 2"),
    (["--kernel", "1", "--threads", "6"], "must be a power of two"),
    (["--kernel", "2", "--threads", "33"], "a tile side is at most 32"),
    (["--device", "cuda"], "Invalid value for '--device'"),
])
def test_usage_errors(tmp_path, args, message):
    proc = _run(*args, "-o", str(tmp_path / "g.gif"))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "g.gif").exists()
