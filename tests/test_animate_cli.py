"""`numbacnn animate`: every subcommand writes a file and prints its path; user mistakes give a clear error,
exit code 2 (usage) or 1 (failure), and no traceback."""
import os
import shutil
import subprocess
import sys

import numpy as np
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


@pytest.fixture
def drawn(monkeypatch):
    """What each command handed to numbacnn.viz (the traces and records), and the frame count it saved."""
    from numbacnn import viz

    seen = {}

    def spy(name, real):
        def wrapper(*args, **kwargs):
            seen[name], seen[f"{name}_kwargs"] = args, kwargs
            return real(*args, **kwargs)

        monkeypatch.setattr(viz, name, wrapper)

    for name in ("conv", "pool", "learn_kernel", "sgd_paths"):
        spy(name, getattr(viz, name))
    real_save = viz.Animation.save

    def save(anim, *args, **kwargs):
        seen["frames"] = len(anim)
        return real_save(anim, *args, **kwargs)

    monkeypatch.setattr(viz.Animation, "save", save)
    return seen


def _ref_conv(t, flip=False):
    from numbacnn.reference.conv import conv2d

    m = t.meta
    return conv2d(t.x, t.weight, None, tuple(m["stride"]), tuple(m["padding"]), tuple(m["dilation"]), flip=flip)


def _kernel(text):
    from numbacnn import scenarios

    return scenarios.parse_kernel(text)


def _checker():
    from numbacnn import scenarios

    return scenarios.preset_input("checker")


def _conv_stride_padding(seen):
    t = seen["conv"][0]
    assert seen["conv_kwargs"]["flipped"] is None
    x = _checker()
    assert t.op == "conv2d" and np.array_equal(t.x[0, 0], x)
    assert np.array_equal(t.weight[0, 0], [[1, 0], [0, -1]])
    assert tuple(t.meta["stride"]) == (2, 2) and tuple(t.meta["padding"]) == (1, 1, 1, 1)
    ho, wo = (x.shape[0] + 2 - 2) // 2 + 1, (x.shape[1] + 2 - 2) // 2 + 1
    assert t.out.shape == (1, 1, ho, wo) and np.array_equal(t.out, _ref_conv(t))
    assert seen["frames"] == ho * wo  # one frame per window


def _conv_flip(seen):
    t = seen["conv"][0]
    flipped = seen["conv_kwargs"]["flipped"]
    assert t.op == "conv2d" and not t.meta["flip"] and max(t.x.shape[2:]) == 4
    assert np.array_equal(t.weight[0, 0], [[1, 2], [0, -1]]) and np.array_equal(t.out, _ref_conv(t))
    assert flipped is not None and flipped.meta["flip"]
    assert np.array_equal(flipped.kernel[0, 0], [[-1, 0], [2, 1]])
    assert np.array_equal(flipped.out, _ref_conv(flipped, flip=True))
    assert seen["frames"] == t.out.size


def _conv_channels(seen):
    t = seen["conv"][0]
    assert t.x.shape == (1, 2, 3, 4) and np.array_equal(t.x[0, 1], t.x[0, 0] + 1)
    assert t.weight.shape[:2] == (2, 2) and np.array_equal(t.weight[0, 0], _kernel("edge"))
    assert np.array_equal(t.weight[1, 1], t.weight[0, 0] + 2) and np.array_equal(t.weight[0, 1], t.weight[0, 0] + 1)
    assert np.array_equal(t.out, _ref_conv(t)) and seen["frames"] == t.out.size  # 2 output channels


def _conv_backward(seen):
    from numbacnn.reference.conv import conv2d_backward

    t = seen["conv"][0]
    assert t.op == "conv2d_backward" and t.x.shape == (1, 1, 3, 4)
    gx, gw, _ = conv2d_backward(t.grad_out, t.x, t.weight)
    assert np.allclose(t.grad_x, gx) and np.allclose(t.grad_weight, gw)
    assert seen["frames"] == t.weight[0, 0].size + t.x[0, 0].size  # the kernel's cells, then the input's


def _pool_compare(seen):
    from numbacnn.reference import pool as ref

    traces = seen["pool"]
    assert [t.op for t in traces] == ["max_pool2d", "avg_pool2d", "min_pool2d"]
    for t, fn in zip(traces, (ref.max_pool2d, ref.avg_pool2d, ref.min_pool2d)):
        assert max(t.x.shape[2:]) == 4 and np.allclose(t.out, fn(t.x, 2))


def _pool_avg_options(seen):
    from numbacnn.reference.pool import avg_pool2d

    (t,) = seen["pool"]
    digits = np.arange(36, dtype=np.float32).reshape(6, 6) * 7 % 10
    assert t.op == "avg_pool2d" and np.array_equal(t.x[0, 0], digits)
    assert tuple(t.meta["kernel_size"]) == (3, 3) and tuple(t.meta["stride"]) == (2, 2)
    assert tuple(t.meta["padding"]) == (1, 1)
    assert t.out.shape == (1, 1, 3, 3) and np.allclose(t.out, avg_pool2d(t.x, 3, 2, 1))
    assert seen["frames"] == 9


def _learn_kernel(seen):
    (record,) = seen["learn_kernel"]
    assert record.steps == 3 and record.kernels.shape[0] == 4 and len(record.losses) == 3


def _sgd_default(seen):
    (run,) = seen["sgd_paths"]
    assert run["surface"] == "quadratic" and [p.variant for p in run["paths"]] == ["sgd", "momentum", "nesterov"]
    assert all(p.positions.shape == (4, 2) for p in run["paths"])


def _sgd_rosenbrock_damped(seen):
    (run,) = seen["sgd_paths"]
    assert run["surface"] == "rosenbrock" and [p.variant for p in run["paths"]] == ["sgd", "momentum"]
    assert run["paths"][1].hyper["dampening"] == 0.5 and not run["paths"][1].hyper["nesterov"]
    assert all(p.positions.shape == (4, 2) for p in run["paths"])


@pytest.mark.parametrize("args, ext, check", [
    (["conv", "--kernel", "1,0;0,-1", "--input", "checker", "--padding", "1", "--stride", "2"], ".png",
     _conv_stride_padding),
    (["conv", "--flip", "--kernel", "1,2;0,-1", "--input", "checker", "--size", "4"], ".gif", _conv_flip),
    (["conv", "--channels", "2,2", "--size", "3x4"], ".gif", _conv_channels),
    (["conv", "--backward", "--size", "3x4"], ".gif", _conv_backward),
    (["pool", "--compare", "--input", "checker", "--image-size", "4"], ".gif", _pool_compare),
    (["pool", "--mode", "avg", "--size", "3", "--stride", "2", "--padding", "1"], ".png", _pool_avg_options),
    (["learn-kernel", "--steps", "3"], ".gif", _learn_kernel),
    (["sgd", "--steps", "3"], ".html", _sgd_default),
    (["sgd", "--surface", "rosenbrock", "--steps", "3", "--no-nesterov", "--dampening", "0.5"], ".gif",
     _sgd_rosenbrock_damped),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_subcommands_write_each_format(tmp_path, drawn, args, ext, check):
    """Each variant writes its file, and what was drawn is what its options ask for (so no option is dropped)."""
    out_file = tmp_path / f"a{ext}"
    code, out = run([*args, *SMALL, "-o", str(out_file)])
    assert code == 0, out
    assert out_file.is_file() and out_file.stat().st_size > 0
    assert str(out_file) in out
    check(drawn)


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
    (["conv", "--kernel", "1e40,1"], 2, "finite float32"),  # refused before the cast, which would warn
    (["conv", "--kernel", "3e38,3e38"], 2, "float32's largest value"),  # the sum would be inf
    (["conv", "--kernel", "3e38,-3e38", "--backward", "--size", "3x4"], 2, "'--kernel'"),
    (["conv", "--bias", "1e39"], 2, "'--bias'"),
])
def test_usage_errors_exit_2(tmp_path, args, code, words):
    got, out = run([*args, *SMALL, "-o", str(tmp_path / "x.gif")])
    assert got == code, out
    assert words in out
    assert not (tmp_path / "x.gif").exists()


def test_unreadable_image_fails_cleanly(tmp_path):
    """A file that is not an image is a bad value of --input (exit 2, like a missing one), named in the error."""
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, out = run(["conv", "--input", str(bad), *SMALL, "-o", str(tmp_path / "x.gif")])
    assert code == 2 and "'--input'" in out and str(bad) in out and "not an image" in out
    assert not (tmp_path / "x.gif").exists()


def test_unknown_format_is_a_usage_error(tmp_path):
    code, out = run(["conv", *SMALL, "-o", str(tmp_path / "x.avi")])
    assert code == 2 and ".avi" in out and ".gif" in out


def test_unwritable_output_fails_before_rendering(tmp_path):
    code, out = run(["conv", *SMALL, "-o", str(tmp_path / "missing" / "x.gif")])
    assert code == 2 and "does not exist" in out and "'-o'" in out
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, out = run(["conv", *SMALL, "-o", str(ro / "x.gif")])
        assert code == 2 and "permission" in out


def _cannot_create_in(folder):
    """mkstemp in ``folder`` fails, whatever os.access says (as /proc does, even for root)."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == os.path.abspath(folder):
            raise FileNotFoundError(2, "No such file or directory")
        return real(*args, dir=dir, **kwargs)

    return mkstemp


@pytest.mark.parametrize("args", [["conv"], ["sgd", "--steps", "2"], ["learn-kernel", "--steps", "2"]])
@pytest.mark.parametrize("where", ["no-folder", "no-files", "bad-extension"])
def test_output_is_checked_before_any_work(tmp_path, drawn, monkeypatch, args, where):
    """A missing folder, a folder that takes no files (/proc) or an unknown extension: exit 2 naming -o and the
    path before any kernel runs or frame renders, and no folder is created."""
    import numbacnn.commands.animate as animate

    monkeypatch.setattr(animate, "run_kernels", lambda *a: pytest.fail("the kernels ran before -o was checked"))
    target = {"no-folder": tmp_path / "nodir" / "x.gif", "no-files": tmp_path / "proc" / "x.gif",
              "bad-extension": tmp_path / "nodir" / "x.avi"}[where]
    if where == "no-files":
        target.parent.mkdir()
        monkeypatch.setattr("tempfile.mkstemp", _cannot_create_in(target.parent))
    code, out = run([*args, *SMALL, "-o", str(target)])
    assert code == 2, out
    assert "'-o' / '--output'" in out and str(target) in out and "frames" not in out
    assert not drawn and list(target.parent.iterdir() if target.parent.exists() else []) == []
    assert not (tmp_path / "nodir").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
def test_output_in_proc_fails_at_once(tmp_path, drawn):
    code, out = run(["conv", *SMALL, "-o", "/proc/x.gif"])
    assert code == 2 and "'/proc/x.gif'" in out and not drawn


def test_diverging_sgd_gets_one_lower_lr_hint_and_no_raw_warnings(tmp_path):
    """A fresh process, so NumPy's RuntimeWarnings would reach stderr as a user sees them."""
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "sgd", "--surface", "rosenbrock", "--lr",
                           "0.01", "--steps", "5", *SMALL, "-o", str(tmp_path / "r.png")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hints = [line for line in proc.stderr.splitlines() if "lower --lr" in line]
    assert len(hints) == 1 and "diverged with --lr 0.01" in hints[0] and "--lr 0.0015" in hints[0], proc.stderr
    assert "Warning" not in proc.stderr and "overflow" not in proc.stderr, proc.stderr


@pytest.mark.filterwarnings("error")  # a NumPy RuntimeWarning would end the command with a traceback
def test_converging_sgd_gets_no_hint_and_huge_kernels_no_warning(tmp_path):
    code, out = run(["sgd", "--steps", "5", *SMALL, "-o", str(tmp_path / "q.png")])  # the defaults converge
    assert code == 0 and "diverged" not in out, out
    code, out = run(["conv", "--kernel", "1e40,1", *SMALL, "-o", str(tmp_path / "k.png")])
    assert code == 2 and "'--kernel'" in out and "float32" in out and "Warning" not in out


def test_mp4_without_ffmpeg_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out = run(["learn-kernel", "--steps", "2", *SMALL, "-o", str(tmp_path / "x.mp4")])
    assert code == 1 and "ffmpeg" in out and "install" in out


def test_trace_commands_reject_bad_files(tmp_path):
    junk = tmp_path / "junk.nctrace"
    junk.write_text("nope")
    for cmd in (["features", str(junk)], ["sgd", "--trace", str(junk)]):
        code, out = run([*cmd, *SMALL, "-o", str(tmp_path / "x.gif")])
        assert code == 1, out
        assert f"Error: {str(junk)!r} is truncated" in out and "not a trace file" in out, out  # the reader's words


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
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", "--device", "cudasim", "--input",
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


def test_a_cold_kernel_cache_says_compiling_on_stderr_once(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-m", "numbacnn", "animate", "conv", *SMALL, "-o", str(tmp_path / "a.gif")],
                           capture_output=True, text=True, env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert "compiling kernels, first run only..." in runs[0].stderr and "compiling kernels: done in" in runs[0].stderr
    assert "compiling" not in runs[1].stderr  # loaded from the cache: nothing to say
