"""`numbacnn animate`: every subcommand writes a file and prints its path; user mistakes give a clear error,
exit code 2 (usage) or 1 (failure), and no traceback."""
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from numbacnn.cli import main

SMALL = ["--dpi", "40"]


def run(args, cwd=None):
    runner = CliRunner()
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
    try:
        res = runner.invoke(main, ["animate", *args], catch_exceptions=True)
    finally:
        if cwd is not None:
            os.chdir(old)
    out = res.output + (res.stderr if hasattr(res, "stderr") and res.stderr_bytes is not None else "")
    assert "Traceback" not in out, out
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, out


def test_conv_default_writes_a_gif_named_after_it(tmp_path):
    code, out = run(["conv", *SMALL], cwd=tmp_path)
    assert code == 0, out
    path = tmp_path / "conv-edge-d2l-edge.gif"
    assert path.is_file() and str(path) in out


@pytest.mark.parametrize("args, ext", [
    (["conv", "--kernel", "1,0;0,-1", "--input", "checker", "--padding", "1", "--stride", "2"], ".png"),
    (["conv", "--flip", "--kernel", "1,2;0,-1", "--input", "checker", "--size", "4"], ".gif"),
    (["conv", "--channels", "2,2", "--size", "3x4"], ".gif"),
    (["conv", "--backward", "--size", "3x4"], ".gif"),
    (["pool", "--compare", "--input", "checker", "--image-size", "4"], ".gif"),
    (["pool", "--mode", "avg", "--size", "3", "--stride", "2", "--padding", "1"], ".png"),
    (["learn-kernel", "--steps", "3"], ".gif"),
    (["sgd", "--steps", "3"], ".html"),
    (["sgd", "--surface", "rosenbrock", "--steps", "3", "--no-nesterov", "--dampening", "0.5"], ".gif"),
])
def test_subcommands_write_each_format(tmp_path, args, ext):
    out_file = tmp_path / f"a{ext}"
    code, out = run([*args, *SMALL, "-o", str(out_file)])
    assert code == 0, out
    assert out_file.is_file() and out_file.stat().st_size > 0
    assert str(out_file) in out


def test_image_file_input_is_read_as_grayscale(tmp_path):
    import numpy as np
    from PIL import Image

    img = tmp_path / "pic.png"
    Image.fromarray((np.indices((20, 30)).sum(axis=0) % 2 * 255).astype("uint8")).save(img)
    code, out = run(["conv", "--input", str(img), "--size", "5", "--kernel", "laplacian", *SMALL,
                     "-o", str(tmp_path / "x.gif")])
    assert code == 0, out


@pytest.mark.parametrize("args, code, words", [
    (["conv", "--kernel", "1,2;3"], 2, "kernel"),
    (["conv", "--kernel", "nope"], 2, "kernel"),
    (["conv", "--input", "no/such/file.png"], 2, "input"),
    (["conv", "--stride", "0"], 2, "stride"),
    (["conv", "--kernel", "sobel-x", "--size", "2"], 2, "larger than"),
    (["conv", "--flip", "--backward"], 2, "--flip"),
    (["conv", "--input", "checker", "--size", "64"], 2, "frames"),
    (["pool", "--size", "2", "--padding", "2"], 2, "pad"),
    (["sgd", "--dampening", "0.5"], 2, "dampening"),
    (["sgd", "--lr", "-1"], 2, "lr"),
])
def test_usage_errors_exit_2(tmp_path, args, code, words):
    got, out = run([*args, *SMALL, "-o", str(tmp_path / "x.gif")])
    assert got == code, out
    assert words in out
    assert not (tmp_path / "x.gif").exists()


def test_unreadable_image_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, out = run(["conv", "--input", str(bad), *SMALL, "-o", str(tmp_path / "x.gif")])
    assert code == 1 and "cannot read" in out


def test_unknown_format_is_a_usage_error(tmp_path):
    code, out = run(["conv", *SMALL, "-o", str(tmp_path / "x.avi")])
    assert code == 2 and ".avi" in out and ".gif" in out


def test_unwritable_output_fails_before_rendering(tmp_path):
    code, out = run(["conv", *SMALL, "-o", str(tmp_path / "missing" / "x.gif")])
    assert code == 1 and "does not exist" in out
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, out = run(["conv", *SMALL, "-o", str(ro / "x.gif")])
        assert code == 1 and "permission" in out


def test_mp4_without_ffmpeg_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out = run(["learn-kernel", "--steps", "2", *SMALL, "-o", str(tmp_path / "x.mp4")])
    assert code == 1 and "ffmpeg" in out and "install" in out


def test_trace_commands_reject_bad_files(tmp_path):
    junk = tmp_path / "junk.nctrace"
    junk.write_text("nope")
    code, out = run(["features", str(junk), *SMALL, "-o", str(tmp_path / "x.gif")])
    assert code == 1 and "Error" in out
    code, out = run(["sgd", "--trace", str(junk), *SMALL, "-o", str(tmp_path / "x.gif")])
    assert code == 1 and "Error" in out


def test_cuda_grid_under_the_simulator(tmp_path):
    """A fresh process: the command switches Numba's CUDA simulator on before Numba loads."""
    out_file = tmp_path / "grid.gif"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "cuda-grid", "--target", "cudasim",
                           "--size", "3x5", "--threads", "2,2", *SMALL, "-o", str(out_file)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out_file.is_file() and str(out_file) in proc.stdout
    from PIL import Image

    with Image.open(out_file) as im:  # 3x5 outputs in 2x2-thread tiles: 2 x 3 blocks, one frame each
        assert im.n_frames == 6


def test_console_entry_exits_with_clicks_codes(tmp_path):
    """`python -m numbacnn` ends through cli.entry (os._exit after flushing): same codes, output intact."""
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", "--kernel", "nope"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "'--kernel'" in proc.stderr and "Traceback" not in proc.stderr
    out_file = tmp_path / "a.gif"
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", *SMALL, "-o", str(out_file)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith(str(out_file)) and out_file.stat().st_size > 0


def test_conv_under_the_simulator_traces_in_a_forked_child(tmp_path):
    """A fresh process: the kernels (here Numba's CUDA simulator) run in a forked child, the drawing here."""
    out_file = tmp_path / "sim.gif"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", "--target", "cudasim", "--input",
                           "checker", "--size", "3", *SMALL, "-o", str(out_file)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from PIL import Image

    with Image.open(out_file) as im:  # a 3x3 checker and the 1x2 edge kernel: 3 x 2 windows
        assert im.n_frames == 6
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", "--target", "cuda",
                           "-o", str(tmp_path / "gpu.gif")], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:  # no GPU here: the child's NoGPUError comes back as a clean failure
        assert proc.returncode == 1 and "needs an NVIDIA GPU" in proc.stderr and "Traceback" not in proc.stderr
