"""Crafted input files and the runner of the CLI fuzz suite (tests/fuzz/cli_files.py).

``make_images(folder)`` writes images whose header lies about their size (decompression bombs), chunks that
inflate, truncated and non-image files, a folder and a FIFO with image names, and odd but valid images (16-bit,
palette, RGBA, 1x1, 1x500); ``make_traces(folder)`` a tiny training trace, an op trace and fakes. ``crafted_files``
(each test module's ``files`` fixture) makes them once per module; ``expect_misuse`` runs one hostile
invocation and checks its exit code, its one "Error: ..." line, and that nothing was written.
"""
import os
import stat
import struct
import traceback
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from numbacnn.cli import main


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width, height, *, idat=None, bit_depth=8, color_type=0):
    """A PNG whose IHDR claims width x height; IDAT holds ``idat`` (compressed bytes) or a few zero rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 5000) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _encoded(fmt):
    """A 4x4 black image encoded by Pillow as ``fmt``."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _patched(data, edits):
    """``data`` with the bytes at each offset replaced: {offset: bytes}."""
    data = bytearray(data)
    for at, new in edits.items():
        data[at:at + len(new)] = new
    return bytes(data)


def make_images(folder):
    """name -> path of every crafted image input (the paths exist, except where noted)."""
    from PIL import Image

    folder = str(folder)
    p = {}

    def put(name, data):
        p[name] = os.path.join(folder, name)
        with open(p[name], "wb") as f:
            f.write(data)

    put("bomb.png", png_bytes(100_000, 100_000))  # 85 bytes claiming 10^10 pixels (Pillow raises on open)
    put("bomb-small.png", png_bytes(9000, 9000))  # 81 Mpx: under Pillow's own error limit, still refused
    put("wide.png", png_bytes(2**31 - 1, 1))
    put("zero.png", png_bytes(0, 0))
    # chunks that inflate far beyond their size, an impossible bit depth, a damaged CRC
    sig, end = png_bytes(1, 1)[:8], png_bytes(1, 1)[-12:]
    small = png_bytes(8, 8, idat=zlib.compress(b"\0" * 72))
    ihdr, idat = small[8:33], small[33:-12]
    text_bomb = zlib.compress(b"a" * (4 << 20), 9)
    put("ztxt-bomb.png", sig + ihdr + _chunk(b"zTXt", b"k\0\0" + text_bomb) + idat + end)
    put("iccp-bomb.png", sig + ihdr + _chunk(b"iCCP", b"p\0\0" + text_bomb) + idat + end)
    put("bit-depth-3.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 3, 0, 0, 0, 0)) + idat + end)
    damaged = bytearray(sig + ihdr + idat + end)
    damaged[30] ^= 0xFF
    put("bad-crc.png", bytes(damaged))
    put("huge.bmp", _patched(_encoded("BMP"), {18: struct.pack("<i", 100000), 22: struct.pack("<i", -100000)}))
    put("huge.gif", _patched(_encoded("GIF"), {6: struct.pack("<HH", 65535, 65535)}))
    jpeg = _encoded("JPEG")
    sof = jpeg.find(b"\xff\xc0")
    put("huge.jpg", _patched(jpeg, {sof + 5: struct.pack(">HH", 65000, 65000)}))
    ok = os.path.join(folder, "ok8.png")
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(ok)
    p["ok8.png"] = ok
    data = open(ok, "rb").read()
    put("truncated.png", data[: len(data) // 2])
    put("cut-idat.png", png_bytes(64, 64, idat=zlib.compress(b"\0" * 100)))  # header fine, too few pixels
    put("header-only.png", data[:8])
    put("text.png", b"hello, not a picture\n")
    put("empty.png", b"")
    put("garbage.gif", os.urandom(2048))
    p["folder.png"] = os.path.join(folder, "folder.png")
    os.mkdir(p["folder.png"])
    p["fifo.png"] = os.path.join(folder, "fifo.png")
    os.mkfifo(p["fifo.png"])
    wide16 = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    p["16bit.png"] = os.path.join(folder, "16bit.png")
    Image.fromarray(wide16).save(p["16bit.png"])
    p["palette.png"] = os.path.join(folder, "palette.png")
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).convert("P").save(p["palette.png"])
    p["rgba.png"] = os.path.join(folder, "rgba.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (np.arange(64).reshape(8, 8) * 4)[..., None]
    Image.fromarray(rgba).save(p["rgba.png"])  # alpha 0 everywhere: the shades still count
    p["1x1.png"] = os.path.join(folder, "1x1.png")
    Image.fromarray(np.full((1, 1), 200, np.uint8)).save(p["1x1.png"])
    p["1x500.png"] = os.path.join(folder, "1x500.png")
    Image.fromarray(np.zeros((1, 500), np.uint8)).save(p["1x500.png"])
    return p


def make_traces(folder):
    """{"run": a training trace folder (2 probe-less samples, 3 recorded steps), "op": an op trace .npz,
    "fake": a folder whose manifest is not numbacnn's, "text": a text file}."""
    from helpers import small_traced_run
    from numbacnn.trace import trace_conv2d

    folder = str(folder)
    run = small_traced_run(os.path.join(folder, "run.nctrace"))
    op = os.path.join(folder, "op.npz")
    trace_conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32)).save(op)
    fake = os.path.join(folder, "fake.nctrace")
    os.mkdir(fake)
    with open(os.path.join(fake, "manifest.json"), "w") as f:
        f.write('{"format": "something else"}')
    text = os.path.join(folder, "notes.npz")
    with open(text, "w") as f:
        f.write("not a zip\n")
    return {"run": run, "op": op, "fake": fake, "text": text}


ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
HUGE = "9" * 40  # far past int64


def crafted_files(tmp_path_factory):
    """Crafted inputs and traces; {"img:<name>": path, "trace:<name>": path, "dir": folder}. A test module makes it
    its fixture: ``files = pytest.fixture(scope="module", name="files")(crafted_files)``."""
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
