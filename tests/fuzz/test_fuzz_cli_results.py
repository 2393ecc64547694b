"""CLI fuzz, results (issue #14): options that used to be silently ignored or misapplied give the result they
should; frames that would not fit in memory are refused; unreadable inputs and outputs; random option text
(hypothesis) either reaches the kernels with sane values or is one line naming the option; a few cases through the
real entry point (`python -m numbacnn`); viz's own fps check. The misuse table is tests/fuzz/test_fuzz_cli.py.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from fuzz_tally import fuzz_settings, tally
from hypothesis import example, given
from hypothesis import strategies as st

from cli_files import ROOT, crafted_files, error_line, expect_misuse, invoke, listing

files = pytest.fixture(scope="module", name="files")(crafted_files)

# ------------------------------------------------------------------------------------------------
# options that were silently ignored or misapplied: the result they should give


def gif_frames(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames


@pytest.mark.parametrize("size,frames", [("3", 1), ("4x6", 6), ("2", 1), ("12", 36)])
def test_pool_image_size_resizes_the_digits_grid(size, frames, tmp_path):
    """`animate pool --image-size` with the default input: a digits grid of that size (it used to be ignored)."""
    tally("cli", "wrong result")
    r = invoke(["animate", "pool", "--image-size", size, "--dpi", "40", "-o", "p.gif"], tmp_path)
    assert r.exit_code == 0, r.output
    assert gif_frames(tmp_path / "p.gif") == frames  # 2x2 windows, stride 2: one frame per window


@pytest.mark.parametrize("size,frames", [("4", 3 * 3), ("4x4", 4 * 3), ("8", 6 * 7)])
def test_conv_size_n_keeps_the_presets_aspect_ratio(size, frames, tmp_path):
    """--size N is the longest side for the 6x8 book image too (it was stretched to NxN): 4 -> 3x4."""
    tally("cli", "wrong result")
    r = invoke(["animate", "conv", "--size", size, "--dpi", "40", "-o", "c.gif"], tmp_path)
    assert r.exit_code == 0, r.output
    assert gif_frames(tmp_path / "c.gif") == frames  # the 1x2 edge kernel: (H) x (W - 1) windows


def test_image_modes_read_as_their_gray_shades(files):
    """16-bit, palette and RGBA images give the shades they hold (16-bit ones used to saturate to white)."""
    from numbacnn import scenarios

    ramp = np.round((np.arange(64).reshape(8, 8) * 4).astype(np.float32) / 255, 2)
    for name in ("ok8.png", "palette.png", "rgba.png"):
        tally("cli", "crafted file")
        np.testing.assert_array_equal(scenarios.load_image(files[f"img:{name}"], (8, 8), exact=True), ramp)
    tally("cli", "wrong result")
    wide = scenarios.load_image(files["img:16bit.png"], (8, 8), exact=True)
    np.testing.assert_allclose(wide, np.round(np.arange(64).reshape(8, 8) * 1000 / 65535, 2), atol=0.011)
    assert wide.dtype == np.float32 and len(np.unique(wide)) > 32
    tally("cli", "crafted file")
    one = scenarios.load_image(files["img:1x1.png"])  # upscaled to the default 12x12
    assert one.shape == (12, 12) and np.all(one == np.float32(round(200 / 255, 2)))


def test_tiny_image_runs_end_to_end(files, tmp_path):
    tally("cli", "crafted file")
    r = invoke(["animate", "conv", "--input", files["img:1x1.png"], "--size", "2x3", "--dpi", "40", "-o", "c.gif"],
               tmp_path)
    assert r.exit_code == 0, r.output
    assert gif_frames(tmp_path / "c.gif") == 2 * 2  # a 2x3 input, the 1x2 edge kernel: 2x2 windows


def test_learn_kernel_says_when_the_kernel_diverged(tmp_path):
    """A too-large --lr draws the diverging run as it happened and says so, naming --lr (it used to be silent)."""
    tally("cli", "wrong result")
    r = invoke(["animate", "learn-kernel", "--lr", "10", "--steps", "3", "--dpi", "40", "-o", "k.png"], tmp_path)
    assert r.exit_code == 0 and (tmp_path / "k.png").is_file(), r.output
    assert "diverged with --lr 10" in r.stderr and "--lr 0.03" in r.stderr
    assert "Warning" not in r.stderr, r.stderr
    r = invoke(["animate", "learn-kernel", "--steps", "3", "--dpi", "40", "-o", "k.png"], tmp_path)
    assert r.exit_code == 0 and "diverged" not in r.stderr, r.stderr


@pytest.mark.parametrize("group,names", [([], ("animate", "demo", "trace", "train-lenet")),
                                         (["animate"], ("conv", "pool", "learn-kernel", "sgd", "features"))],
                         ids=["numbacnn", "animate"])
def test_bare_groups_show_their_commands(group, names, tmp_path):
    """`numbacnn` or `numbacnn animate` with no command: click's usage (exit 2) listing the commands."""
    tally("cli", "raw error")
    r = invoke(group, tmp_path)
    assert isinstance(r.exception, SystemExit) and r.exit_code == 2, r.output
    out = r.output + r.stderr
    assert "Usage:" in out and "Traceback" not in out
    assert all(name in out for name in names)
    assert listing(tmp_path) == []


def _has_gpu():
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:  # noqa: BLE001  (no driver, no toolkit: no GPU)
        return False


@pytest.mark.parametrize("args", [["animate", "conv", "--device", "cuda", "--dpi", "40"],
                                  ["animate", "pool", "--device", "cuda", "--dpi", "40"],
                                  ["demo", "--device", "cuda"]], ids=["conv", "pool", "demo"])
def test_cuda_without_a_gpu_is_a_failure_naming_it(args, files, tmp_path):
    if _has_gpu():
        pytest.skip("a GPU is present: --device cuda works here")
    tally("cli", "raw error")
    expect_misuse(args, 1, ["'cuda'", "--device cudasim"], files, tmp_path)


# ------------------------------------------------------------------------------------------------
# memory: frames that would not fit are refused before rendering


def test_frames_beyond_the_memory_limit_are_refused_naming_dpi(files, tmp_path, monkeypatch):
    tally("cli", "crash")
    monkeypatch.setenv("NUMBACNN_MAX_ARRAY_BYTES", str(10**6))
    line = expect_misuse(["animate", "conv", "--dpi", "300"], 2, ["'--dpi'", "300", "42 frames"], files, tmp_path)
    assert "GiB" in line


def test_largest_conv_at_dpi_300_is_refused(files, tmp_path):
    """1443 windows at --dpi 300 would hold ~18 GiB of frames in memory (the default limit is 4 GiB)."""
    tally("cli", "crash")
    args = ["animate", "conv", "--input", files["img:ok8.png"], "--size", "38x40", "--kernel", "1,1;1,1",
            "--dpi", "300"]
    expect_misuse(args, 2, ["'--dpi'", "1443 frames"], files, tmp_path)


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_input_that_fails_to_read_is_a_failure_naming_it(files, tmp_path):
    """/proc/self/mem looks like a regular file but every read at offset 0 fails (EIO): exit 1, no traceback."""
    tally("cli", "crafted file")
    expect_misuse(["animate", "conv", "--input", "/proc/self/mem"], 1, ["--input", "/proc/self/mem"], files,
                  tmp_path)


@pytest.mark.skipif(ROOT, reason="root reads any file")
def test_unreadable_input_is_a_failure_naming_it(files, tmp_path):
    tally("cli", "crafted file")
    secret = tmp_path / "secret.png"
    secret.write_bytes(open(files["img:ok8.png"], "rb").read())
    secret.chmod(0)
    try:
        expect_misuse(["animate", "conv", "--input", str(secret)], 1, ["--input", str(secret)], files, tmp_path)
    finally:
        secret.chmod(0o644)


@pytest.mark.skipif(ROOT, reason="root writes into a read-only folder")
def test_read_only_folder_is_refused(files, tmp_path):
    tally("cli", "raw error")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        expect_misuse(["animate", "conv", "-o", str(ro / "x.gif")], 2, ["'--output'", str(ro / "x.gif")], files,
                      tmp_path)
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------------------------------------
# random text in the pair options: a usage error naming the option, or the kernels are reached


class Reached(Exception):
    """Raised instead of running the kernels: the options were accepted."""


def _stop(*args, **kwargs):
    raise Reached


PAIR_TEXT = st.one_of(
    st.text(alphabet="0123456789,x-+ .;e_", max_size=12),
    st.lists(st.integers(-3, 2**64), min_size=1, max_size=3).map(lambda v: ",".join(map(str, v))),
    st.text(max_size=8))


@fuzz_settings()
@given(opt=st.sampled_from(["stride", "padding", "dilation", "size", "channels", "kernel"]), value=PAIR_TEXT)
@example(opt="size", value="1")  # the input shrunk below the kernel: the message must name --size
def test_random_conv_option_text(opt, value, tmp_path_factory):
    _random_option(["animate", "conv"], opt, value, tmp_path_factory)


@fuzz_settings()
@given(opt=st.sampled_from(["size", "stride", "padding", "image-size"]), value=PAIR_TEXT)
@example(opt="image-size", value="1")  # found by a CI run: the message named every option but --image-size
def test_random_pool_option_text(opt, value, tmp_path_factory):
    _random_option(["animate", "pool"], opt, value, tmp_path_factory)


FLOAT_TEXT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(["nan", "-nan", "inf", "-inf", "Infinity", "1e309", "-0.0", "0x10", "1_0",
                                        "", " ", "1e-320", "3.5e38", "1e38"]))


@fuzz_settings()
@given(cmd_opt=st.sampled_from([("sgd", "lr"), ("sgd", "momentum"), ("sgd", "dampening"), ("sgd", "weight-decay"),
                                ("learn-kernel", "lr"), ("conv", "bias"), ("pool", "fps")]), value=FLOAT_TEXT)
def test_random_float_options_are_finite_or_refused(cmd_opt, value, tmp_path_factory):
    """Every float a command accepts reaches the kernels finite; anything else is one line naming the option."""
    cmd, opt = cmd_opt
    extra = ["--no-nesterov"] if opt == "dampening" else []
    seen = {}

    def stop(fn, *args):  # what the command hands the kernels: every float in it must be finite
        seen["args"] = [getattr(fn, "keywords", {}), args]
        raise Reached

    _random_option(["animate", cmd, *extra], opt, value, tmp_path_factory, stop, kind="wrong result")
    if seen:
        kwargs, args = seen["args"]
        numbers = [v for v in [*kwargs.values(), *args] if isinstance(v, float)]
        arrays = [v for v in args if isinstance(v, np.ndarray) or v is None]
        assert all(np.isfinite(v) for v in numbers), seen
        assert all(a is None or np.all(np.isfinite(a)) for a in arrays), seen


def _random_option(cmd, opt, value, tmp_path_factory, stop=_stop, kind="raw error"):
    tally("cli", kind)
    cwd = tmp_path_factory.mktemp("random")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("numbacnn.commands.animate.run_kernels", stop)
        r = invoke(cmd + [f"--{opt}", value], cwd)
    if isinstance(r.exception, Reached):
        return
    line = error_line(r)
    assert r.exit_code == 2, line
    assert f"--{opt}" in line or opt == "kernel" and "window's sum" in line, line
    assert listing(cwd) == []


# ------------------------------------------------------------------------------------------------
# the real entry point: no traceback reaches the terminal


REAL = [
    (["animate", "conv", "--input", "@img:bomb.png"], 2, "crafted file", "100000x100000"),
    (["animate", "conv", "--input", "@img:fifo.png"], 2, "crafted file", "not a regular file"),
    (["animate", "conv", "--fps", "nan"], 2, "raw error", "'--fps'"),
    (["animate", "conv", "--stride", str(2**63)], 2, "crash", "'--stride'"),
    (["animate", "learn-kernel", "--seed", "-1"], 2, "raw error", "'--seed'"),
    (["animate", "sgd", "--trace", "@trace:op"], 1, "crafted file", "op trace"),
    (["animate", "features", "@trace:fake"], 1, "crafted file", "fake.nctrace"),
    (["demo", "--device", "tpu"], 2, "raw error", "'--device'"),
]


@pytest.mark.parametrize("args,code,kind,needle", REAL, ids=[" ".join(c[0]) for c in REAL])
def test_real_entry_point_shows_no_traceback(args, code, kind, needle, files, tmp_path):
    tally("cli", kind)
    args = [files.get(a[1:], a) if a.startswith("@") else a for a in args]
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "numbacnn", *args], cwd=tmp_path, capture_output=True, text=True,
                       env=env, stdin=subprocess.DEVNULL)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    assert p.returncode == code, p.stderr
    last = [line for line in p.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("Error: ") and needle in last, p.stderr
    assert listing(tmp_path) == []


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), float("inf"), "2", True, None, np.float32("nan")])
def test_animation_save_refuses_bad_fps_before_rendering(fps, tmp_path):
    """The Python side of --fps (numbacnn.viz): Animation.save / to_jshtml name fps and its value, write nothing."""
    from numbacnn import viz
    from numbacnn.trace import trace_conv2d

    tally("api", "raw error")
    anim = viz.conv(trace_conv2d(np.ones((1, 1, 2, 3), np.float32), np.ones((1, 1, 1, 2), np.float32)), dpi=40)
    for call in (lambda: anim.save(tmp_path / "a.gif", fps=fps), lambda: anim.to_jshtml(fps=fps)):
        with pytest.raises(ValueError, match="fps") as err:
            call()
        assert repr(fps) in str(err.value) and "\n" not in str(err.value)
    assert listing(tmp_path) == []
