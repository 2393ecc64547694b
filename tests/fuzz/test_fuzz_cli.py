"""CLI misuse fuzz (issue #14): `numbacnn animate conv|pool|learn-kernel|sgd|features`, `demo`, the group itself.

A table of hostile invocations (wrong types, zero / negative / huge ints, nan and inf, bad choices, malformed
pairs, kernels that do not parse or do not fit, output paths that are folders, devices, FIFOs or in missing
folders, crafted images and traces). Every case must end with the exit code it should have (2: usage, 1: failure),
one "Error: ..." line naming the option and the value, no traceback, and no file written. Cases that used to be
silently ignored or misapplied check the result they should give. A hypothesis test throws random text at the
pair options, and a few cases run through the real entry point (`python -m numbacnn`).
"""
import os
import stat
import subprocess
import sys
import traceback

import numpy as np
import pytest
from click.testing import CliRunner
from fuzz_tally import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

from cli_files import make_images, make_traces
from numbacnn.cli import main

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
HUGE = "9" * 40  # far past int64


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Crafted inputs and traces, made once; {"img:<name>": path, "trace:<name>": path, "dir": folder}."""
    folder = tmp_path_factory.mktemp("crafted")
    paths = {f"img:{k}": v for k, v in make_images(folder).items()}
    paths.update({f"trace:{k}": v for k, v in make_traces(folder).items()})
    node = folder / "node.gif"
    if ROOT:  # a character device like /dev/null (1, 3), made here so no real device is ever at risk
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        os.mkfifo(node)
    paths["node.gif"] = str(node)
    os.symlink(node, folder / "link-to-node.gif")
    paths["link.gif"] = str(folder / "link-to-node.gif")
    os.symlink(folder / "gone.png", folder / "dangling.png")
    paths["dangling.png"] = str(folder / "dangling.png")
    paths["fifo.gif"] = str(folder / "pipe.gif")
    os.mkfifo(paths["fifo.gif"])
    paths["dir"] = str(folder)
    return paths


def listing(folder):
    return sorted(os.listdir(folder))


def invoke(args, cwd):
    """Run the CLI in-process in ``cwd``; returns click's Result."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, catch_exceptions=True)
    finally:
        os.chdir(old)


def error_line(result):
    """The result's one "Error: ..." line; fails the test on a traceback, a non-SystemExit or a second line."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        pytest.fail("".join(traceback.format_exception(exc)))
    text = result.output + result.stderr
    assert "Traceback" not in text, text
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr (stdout: {result.stdout!r})"
    starts = [k for k, line in enumerate(lines) if line.startswith("Error: ")]
    assert starts, result.stderr
    assert starts[0] == len(lines) - 1, f"the error is not one last line:\n{result.stderr}"  # one line, last
    assert starts[0] == 0 or lines[0].startswith("Usage: "), result.stderr  # click's usage preamble is fine
    return lines[-1]


def expect_misuse(args, code, needles, files, tmp_path):
    """``args`` ends with exit ``code``, one error line holding every needle, and nothing written anywhere."""
    args = [files.get(a[1:], a) if a.startswith("@") else a for a in args]
    needles = [files.get(n[1:], n) if n.startswith("@") else n for n in needles]
    before, crafted = listing(tmp_path), listing(files["dir"])
    r = invoke(args, tmp_path)
    line = error_line(r)
    assert r.exit_code == code, f"exit {r.exit_code}, expected {code}: {line}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert listing(tmp_path) == before and listing(files["dir"]) == crafted, "a failed command wrote a file"
    return line


# (args, exit code, kind, words the error line must hold); "@name" is a crafted file from the `files` fixture
C = ["animate", "conv"]
P = ["animate", "pool"]
LK = ["animate", "learn-kernel"]
SGD = ["animate", "sgd"]
F = ["animate", "features"]
CASES = [
    # the group and demo
    (["nosuch"], 2, "raw error", ["nosuch"]),
    (["--nosuch"], 2, "raw error", ["--nosuch"]),
    (["animate", "nosuch"], 2, "raw error", ["nosuch"]),
    (["demo", "--device", "tpu"], 2, "raw error", ["--device", "tpu"]),
    (["demo", "--target", "gpu"], 2, "raw error", ["--target", "gpu"]),
    (["demo", "extra"], 2, "raw error", ["extra"]),
    (C + ["extra"], 2, "raw error", ["extra"]),
    (C + ["--kernel"], 2, "raw error", ["--kernel"]),
    # conv --size (memory: the input is drawn cell by cell)
    (C + ["--size", "100000x100000"], 2, "crash", ["'--size'", "100000x100000"]),
    (C + ["--size", "10**9"], 2, "crash", ["'--size'", "10**9"]),
    (C + ["--size", HUGE], 2, "crash", ["'--size'", HUGE]),
    (C + ["--size", "65"], 2, "crash", ["'--size'", "65"]),
    *[(C + ["--size", v], 2, "raw error", ["'--size'", repr(v)])
      for v in ("3x", "x3", "-1x2", "0", "0x5", "3x3x3", "nan", "", "1e3", "3,3", "x")],
    # conv pairs: stride, padding, dilation
    *[(C + [f"--{opt}", v], 2, "raw error", [f"'--{opt}'", repr(v)])
      for opt, bad in (("stride", ("3,,3", "0", "-1", "1,2,3", "a", "", "1.5", "-1x2", "3x")),
                       ("padding", ("-1", "1,2,3", "x", ",", "1;1")),
                       ("dilation", ("0", "-2", "1,0", "nan")))
      for v in bad],
    *[(C + [f"--{opt}", v], 2, "crash", [f"'--{opt}'", v])
      for opt in ("stride", "padding", "dilation") for v in (str(2**63), HUGE, f"1,{2**62 * 4}")],
    (C + ["--padding", "1000000"], 2, "crash", ["--padding 1000000", "frames"]),
    (C + ["--padding", "30000,0"], 2, "crash", ["--padding 30000,0", "frames"]),
    (C + ["--dilation", "1000"], 2, "raw error", ["--dilation 1000", "--kernel 'edge'"]),
    # conv --kernel
    *[(C + ["--kernel", v], 2, "raw error", ["'--kernel'", repr(v)])
      for v in ("", ";", "1,2;3", "nan", "inf,1", "-inf", "1e39", "abc", "0x10", "1;;2", "1,2;", "[[1]]")],
    (C + ["--kernel", "1e38,1e38"], 2, "raw error", ["'--kernel'", "float32"]),
    (C + ["--kernel", "1,0,0,0,0,0,0,0,0,1"], 2, "raw error", ["--kernel '1,0,0,0,0,0,0,0,0,1' is 1x10", "6x8"]),
    (C + ["--kernel", ",".join(["1"] * 100000)], 2, "crash", ["is 1x100000"]),
    (C + ["--kernel", ";".join(["1"] * 3000)], 2, "crash", ["is 3000x1"]),
    # conv --channels, --flip, --backward, --bias
    *[(C + ["--channels", v], 2, "raw error", ["'--channels'", repr(v)]) for v in ("0", "5", "2,3,4", "4,5", "a", "")],
    (C + ["--channels", "2", "--flip"], 2, "raw error", ["--channels", "--flip"]),
    (C + ["--channels", "1,2", "--backward"], 2, "raw error", ["--channels", "--backward"]),
    (C + ["--flip", "--backward"], 2, "raw error", ["--flip", "--backward"]),
    *[(C + ["--bias", v], 2, "raw error", ["'--bias'", v]) for v in ("nan", "inf", "-inf", "abc", "")],
    (C + ["--bias", "1e300"], 2, "raw error", ["'--bias'", "1e+300"]),
    # output options (shared by every animation)
    *[(C + ["--fps", v], 2, "raw error", ["'--fps'", v]) for v in ("0", "nan", "inf", "-1", "abc", "")],
    (C + ["--fps", "1e9"], 2, "raw error", ["'--fps'", "1000000000.0"]),
    *[(C + ["--dpi", v], 2, "raw error", ["'--dpi'", v]) for v in ("100000", "0", "abc", "-5", "39", "1.5")],
    (C + ["--device", "tpu"], 2, "raw error", ["'--device'", "tpu"]),
    (C + ["-o", "nodir/x.gif"], 2, "raw error", ["'--output'", "nodir/x.gif", "does not exist"]),
    (C + ["-o", "@dir"], 2, "raw error", ["'--output'", "@dir"]),
    (C + ["-o", "x.txt"], 2, "raw error", ["'--output'", "x.txt", ".gif"]),
    (C + ["-o", "x"], 2, "raw error", ["'--output'", "'x'"]),
    (C + ["-o", ""], 2, "raw error", ["'--output'", "''"]),
    (C + ["-o", "/proc/x.gif"], 2, "raw error", ["'--output'", "/proc/x.gif"]),
    (C + ["-o", "@node.gif"], 2, "raw error", ["'--output'", "@node.gif"]),
    (C + ["-o", "@link.gif"], 2, "raw error", ["'--output'", "@link.gif"]),
    (C + ["-o", "@fifo.gif"], 2, "raw error", ["'--output'", "@fifo.gif"]),
    (LK + ["-o", "@node.gif"], 2, "raw error", ["'--output'", "@node.gif"]),
    (F + ["@trace:run", "-o", "@node.gif"], 2, "raw error", ["'--output'", "@node.gif"]),
    # conv --input: crafted and unusable files
    (C + ["--input", "nosuch.png"], 2, "raw error", ["'--input'", "nosuch.png"]),
    (C + ["--input", ""], 2, "raw error", ["'--input'", "''"]),
    (C + ["--input", "@img:bomb.png"], 2, "crafted file", ["'--input'", "@img:bomb.png", "100000x100000"]),
    (C + ["--input", "@img:bomb-small.png"], 2, "crafted file", ["'--input'", "@img:bomb-small.png", "9000x9000"]),
    (C + ["--input", "@img:wide.png"], 2, "crafted file", ["'--input'", "@img:wide.png", "2147483647x1"]),
    (P + ["--input", "@img:bomb.png"], 2, "crafted file", ["'--input'", "@img:bomb.png", "100000x100000"]),
    *[(C + ["--input", f"@img:{name}"], 2, "crafted file", ["'--input'", f"@img:{name}"])
      for name in ("zero.png", "truncated.png", "cut-idat.png", "header-only.png", "text.png", "empty.png",
                   "garbage.gif", "folder.png", "fifo.png", "ztxt-bomb.png", "iccp-bomb.png", "bit-depth-3.png",
                   "bad-crc.png")],
    *[(C + ["--input", f"@img:{name}"], 2, "crafted file", ["'--input'", f"@img:{name}", size])
      for name, size in (("huge.bmp", "100000x100000"), ("huge.gif", "65535x65535"), ("huge.jpg", "65000x65000"))],
    (C + ["--input", "@img:1x500.png", "--kernel", "sobel-x"], 2, "crafted file",
     ["--kernel 'sobel-x' is 3x3", "@img:1x500.png", "1x12"]),
    (C + ["--input", "@node.gif"], 2, "crafted file", ["'--input'", "@node.gif", "not a regular file"]),
    (C + ["--input", "@link.gif"], 2, "crafted file", ["'--input'", "@link.gif", "not a regular file"]),
    (C + ["--input", "@dangling.png"], 1, "crafted file", ["--input", "@dangling.png", "No such file"]),
    # pool
    *[(P + ["--size", v], 2, "raw error", ["'--size'", repr(v)]) for v in ("0", "3,,3", "-2", "a", "1,2,3")],
    *[(P + ["--size", v], 2, "crash", ["--size", v]) for v in ("7", "100000", str(2**31 - 1))],
    (P + ["--size", HUGE], 2, "crash", ["'--size'", HUGE]),
    *[(P + ["--stride", v], 2, "raw error", ["'--stride'", repr(v)]) for v in ("0", "", "1,,1")],
    (P + ["--stride", "1" + "0" * 22], 2, "crash", ["'--stride'", "1" + "0" * 22]),
    (P + ["--padding", "5"], 2, "raw error", ["--padding '5'", "padding"]),
    (P + ["--padding", "-1"], 2, "raw error", ["'--padding'", "-1"]),
    (P + ["--mode", "median"], 2, "raw error", ["'--mode'", "median"]),
    (P + ["--input", "nosuch"], 2, "raw error", ["'--input'", "nosuch"]),
    *[(P + ["--image-size", v], 2, "wrong result", ["'--image-size'", repr(v)]) for v in ("0", "3x", "100", "-1")],
    (P + ["--image-size", "64"], 2, "crash", ["--image-size", "4096"]),
    (P + ["--input", "checker", "--image-size", "40x40"], 2, "crash", ["--image-size", "1600"]),
    # learn-kernel
    *[(LK + ["--steps", v], 2, "raw error", ["'--steps'", v]) for v in ("0", "-1", "abc", "1.5")],
    (LK + ["--steps", "1000000000"], 2, "crash", ["'--steps'", "1000000000"]),
    *[(LK + ["--lr", v], 2, "wrong result", ["'--lr'", v]) for v in ("nan", "inf", "NaN", "-inf")],
    *[(LK + ["--lr", v], 2, "raw error", ["'--lr'", v]) for v in ("-1", "abc", "")],
    (LK + ["--lr", "1e300"], 2, "wrong result", ["'--lr'", "1e+300"]),  # became inf in the float32 update
    *[(LK + ["--seed", v], 2, "raw error", ["'--seed'", v]) for v in ("-1", "abc", "1.5", "-" + HUGE)],
    # sgd on a 2-D surface
    *[(SGD + ["--steps", v], 2, "raw error", ["'--steps'", v]) for v in ("0", "-3", "x")],
    (SGD + ["--steps", "1000000000"], 2, "crash", ["'--steps'", "1000000000"]),
    *[(SGD + [f"--{opt}", v], 2, "wrong result", [f"'--{opt}'", v])
      for opt in ("lr", "momentum", "weight-decay", "dampening") for v in ("nan", "inf")],
    *[(SGD + [f"--{opt}", v], 2, "raw error", [f"'--{opt}'", v])
      for opt, bad in (("lr", ("-1", "x")), ("momentum", ("0", "-1")), ("dampening", ("2", "-0.5")),
                       ("weight-decay", ("-1",)))
      for v in bad],
    (SGD + ["--dampening", "0.5"], 2, "raw error", ["--dampening 0.5", "--no-nesterov"]),
    (SGD + ["--dampening", "0.5", "--nesterov"], 2, "raw error", ["--dampening 0.5", "--no-nesterov"]),
    (SGD + ["--surface", "banana"], 2, "raw error", ["'--surface'", "banana"]),
    (SGD + ["--param", "0.weight"], 2, "wrong result", ["--param '0.weight'", "--trace"]),
    # sgd --trace: options of the 2-D run are not silently ignored; traces that are not training traces
    (SGD + ["--trace", "@trace:run", "--lr", "5"], 2, "wrong result", ["--lr 5.0", "--trace"]),
    (SGD + ["--trace", "@trace:run", "--steps", "3"], 2, "wrong result", ["--steps 3", "--trace"]),
    (SGD + ["--trace", "@trace:run", "--surface", "rosenbrock"], 2, "wrong result", ["--surface rosenbrock"]),
    (SGD + ["--trace", "@trace:run", "--no-nesterov"], 2, "wrong result", ["--no-nesterov"]),
    (SGD + ["--trace", "@trace:run", "--param", ""], 2, "wrong result", ["'--param'", "''"]),
    (SGD + ["--trace", "@trace:run", "--param", "nope"], 2, "raw error", ["'--param'", "'nope'", "0.weight"]),
    (SGD + ["--trace", "nosuch"], 2, "raw error", ["'--trace'", "nosuch"]),
    (SGD + ["--trace", "@trace:op"], 1, "crafted file", ["@trace:op", "op trace"]),
    (SGD + ["--trace", "@trace:text"], 1, "crafted file", ["@trace:text"]),
    (SGD + ["--trace", "@trace:fake"], 1, "crafted file", ["@trace:fake"]),
    (SGD + ["--trace", "@img:ok8.png"], 1, "crafted file", ["@img:ok8.png"]),
    (SGD + ["--trace", "@node.gif"], 1, "crafted file", ["@node.gif"]),
    # features
    (F, 2, "raw error", ["TRACE_PATH"]),
    (F + ["nosuch"], 2, "raw error", ["TRACE_PATH", "nosuch"]),
    (F + ["@trace:op"], 1, "crafted file", ["@trace:op", "op trace"]),
    (F + ["@trace:text"], 1, "crafted file", ["@trace:text"]),
    (F + ["@trace:fake"], 1, "crafted file", ["@trace:fake"]),
    (F + ["@img:folder.png"], 1, "crafted file", ["@img:folder.png"]),
    (F + ["@node.gif"], 1, "crafted file", ["@node.gif"]),
    (F + ["@trace:run", "--example", "-1"], 2, "raw error", ["'--example'", "-1"]),
    (F + ["@trace:run", "--example", "1000000"], 1, "raw error", ["example 1000000"]),
    (F + ["@trace:run", "--example", HUGE], 1, "crash", [f"example {HUGE}"]),
    *[(F + ["@trace:run", "--max-channels", v], 2, "raw error", ["'--max-channels'", v]) for v in ("0", "100000")],
    (F + ["@trace:run", "--source", "both"], 2, "raw error", ["'--source'", "both"]),
    (F + ["@trace:run", "--source", "probe"], 2, "wrong result", ["'--source'", "probe", "--source batch"]),
]


@pytest.mark.parametrize("args,code,kind,needles", CASES, ids=[" ".join(c[0])[:80] for c in CASES])
def test_misuse_is_one_clear_line_and_writes_nothing(args, code, kind, needles, files, tmp_path):
    tally("cli", kind)
    expect_misuse(args, code, needles, files, tmp_path)


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


def test_device_node_is_left_alone(files):
    """No refusal above may have replaced the crafted device node (or FIFO) with a regular file."""
    tally("cli", "crafted file")
    mode = os.lstat(files["node.gif"]).st_mode
    assert stat.S_ISCHR(mode) if ROOT else stat.S_ISFIFO(mode)
    assert stat.S_ISFIFO(os.lstat(files["fifo.gif"]).st_mode)


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
def test_random_conv_option_text(opt, value, tmp_path_factory):
    _random_option(["animate", "conv"], opt, value, tmp_path_factory)


@fuzz_settings()
@given(opt=st.sampled_from(["size", "stride", "padding", "image-size"]), value=PAIR_TEXT)
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
