"""CLI misuse fuzz (issue #14): `numbacnn animate conv|pool|learn-kernel|sgd|features`, `demo`, the group itself.

A table of hostile invocations (wrong types, zero / negative / huge ints, nan and inf, bad choices, malformed
pairs, kernels that do not parse or do not fit, output paths that are folders, devices, FIFOs or in missing
folders, crafted images and traces). Every case must end with the exit code it should have (2: usage, 1: failure),
one "Error: ..." line naming the option and the value, no traceback, and no file written.
tests/fuzz/test_fuzz_cli_results.py checks what options that used to be ignored now do, memory limits, random
option text (hypothesis) and the real entry point.
"""
import os
import stat

import pytest
from fuzz_tally import tally

from cli_files import HUGE, ROOT, crafted_files, expect_misuse

files = pytest.fixture(scope="module", name="files")(crafted_files)

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
    (F + ["@trace:run", "--example", "1000000"], 2, "raw error", ["'--example'", "example 1000000"]),
    (F + ["@trace:run", "--example", HUGE], 2, "crash", ["'--example'", f"example {HUGE}"]),
    *[(F + ["@trace:run", "--max-channels", v], 2, "raw error", ["'--max-channels'", v]) for v in ("0", "100000")],
    (F + ["@trace:run", "--source", "both"], 2, "raw error", ["'--source'", "both"]),
    (F + ["@trace:run", "--source", "probe"], 2, "wrong result", ["'--source'", "probe", "--source batch"]),
]


@pytest.mark.parametrize("args,code,kind,needles", CASES, ids=[" ".join(c[0])[:80] for c in CASES])
def test_misuse_is_one_clear_line_and_writes_nothing(args, code, kind, needles, files, tmp_path):
    tally("cli", kind)
    expect_misuse(args, code, needles, files, tmp_path)


def test_device_node_is_left_alone(files):
    """No refusal above may have replaced the crafted device node (or FIFO) with a regular file."""
    tally("cli", "crafted file")
    mode = os.lstat(files["node.gif"]).st_mode
    assert stat.S_ISCHR(mode) if ROOT else stat.S_ISFIFO(mode)
    assert stat.S_ISFIFO(os.lstat(files["fifo.gif"]).st_mode)
