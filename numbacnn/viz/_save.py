"""Writing an animation to disk (numbacnn.viz._save); the format follows the file extension.

.gif  Pillow (which matplotlib already depends on)
.mp4  ffmpeg, when it is on PATH (a clear error naming the fix otherwise)
.html one self-contained page with play/step controls (matplotlib's HTMLWriter, frames embedded)
.png  a contact sheet: every frame, in reading order, on one image

Every write goes to a temporary file next to the target and is moved into place with os.replace,
so an interrupted render never leaves a half-written file under the final name.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from numbacnn._io import atomic_path
from numbacnn._paths import OutputPathError, check_output_path

FORMATS = (".gif", ".mp4", ".html", ".png")


class SaveError(RuntimeError):
    """The animation could not be written (missing tool, unwritable path)."""


def check_fps(fps) -> float:
    """``fps`` as a float: a positive, finite real number (a bool, a string, nan or inf is a ValueError naming it)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or \
            not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    return float(fps)


def check_output(path) -> tuple[Path, str]:
    """Validate ``path`` before any rendering: a known extension and a writable folder.

    Raises ValueError for an unknown format and SaveError for a folder that does not exist or
    cannot be written (numbacnn._paths tries to create a file there; folders are never created); both name the
    path.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"output format {ext or '(none)'!r} of {str(path)!r} is not supported: "
                         f"use one of {', '.join(FORMATS)}")
    try:
        check_output_path(path)
    except OutputPathError as exc:
        raise SaveError(str(exc)) from None
    if ext == ".mp4" and ffmpeg_path() is None:
        raise SaveError("writing .mp4 needs ffmpeg, which is not on PATH: install it "
                        "(`apt install ffmpeg`, `brew install ffmpeg` or `conda install ffmpeg`), "
                        "or save as .gif or .html instead")
    return path, ext


def ffmpeg_path():
    """The ffmpeg executable, or None."""
    return shutil.which("ffmpeg")


def _atomic(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path``; the temp file is removed on failure.
    SaveError when ``path`` became a folder, device or FIFO since it was checked (atomic_path refuses those)."""
    from numbacnn._io import NotAFileTargetError

    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except NotAFileTargetError as exc:
        raise SaveError(str(exc)) from None
    return path


def write_gif(frames, path: Path, fps: float) -> Path:
    """Frames ((F, H, W, 3) uint8, or a list of (H, W, 3)) as a looping GIF."""
    from PIL import Image

    # one palette for the whole animation, from a mosaic of up to 8 frames: no flicker, and fast (the octree
    # quantizer takes a quarter of median cut's time here and keeps the flat cell colours closer)
    picks = [frames[k] for k in np.unique(np.linspace(0, len(frames) - 1, min(8, len(frames))).astype(int))]
    mosaic = np.concatenate([f[::2, ::2] for f in picks], axis=0)
    palette = Image.fromarray(np.ascontiguousarray(mosaic)).quantize(256, method=Image.Quantize.FASTOCTREE,
                                                                      dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    duration = max(int(round(1000 / fps)), 20)

    def write(tmp):
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)

    return _atomic(path, write)


def contact_sheet(frames, max_width: int = 2400, gap: int = 6) -> np.ndarray:
    """Tile the frames in reading order on a white sheet at most ``max_width`` pixels wide."""
    from PIL import Image

    n = len(frames)
    h, w = frames[0].shape[:2]
    cols = max(1, min(n, math.ceil(math.sqrt(n * h / w))))
    scale = min(1.0, (max_width - gap * (cols + 1)) / (cols * w))
    tw, th = max(1, int(w * scale)), max(1, int(h * scale))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * th + gap * (rows + 1), cols * tw + gap * (cols + 1), 3), 255, np.uint8)
    for k, f in enumerate(frames):
        img = Image.fromarray(f)
        if scale < 1.0:
            img = img.resize((tw, th), Image.Resampling.LANCZOS)
        r, c = divmod(k, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = np.asarray(img)[:, :, :3]
    return sheet


def write_png(frames, path: Path) -> Path:
    from PIL import Image

    sheet = Image.fromarray(contact_sheet(frames))
    return _atomic(path, lambda tmp: sheet.save(tmp, format="PNG", optimize=True))


def write_mp4(frames, path: Path, fps: float) -> Path:
    """Pipe raw RGB frames into ffmpeg (H.264, yuv420p, even width and height)."""
    exe = ffmpeg_path()
    if exe is None:
        raise SaveError("writing .mp4 needs ffmpeg, which is not on PATH: install it, or save as .gif or .html")
    h, w = frames[0].shape[:2]

    def write(tmp):
        cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", str(fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp)]
        proc = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                              capture_output=True)
        if proc.returncode != 0:
            raise SaveError(f"ffmpeg failed writing {str(path)!r}: {proc.stderr.decode(errors='replace').strip()}")

    return _atomic(path, write)


# matplotlib's player draws its buttons with Font Awesome from a CDN; plain Unicode symbols keep the page
# self-contained (it works offline, opened from disk).
_ICONS = {"fa fa-minus": "&minus;", "fa fa-plus": "+", "fa fa-fast-backward": "|&#x25C0;&#x25C0;",
          "fa fa-step-backward": "|&#x25C0;", "fa fa-play fa-flip-horizontal": "&#x25C0;", "fa fa-pause": "||",
          "fa fa-play": "&#x25B6;", "fa fa-step-forward": "&#x25B6;|", "fa fa-fast-forward": "&#x25B6;&#x25B6;|"}


def _offline(body: str) -> str:
    """Drop the player's external stylesheet and draw its icons with Unicode symbols."""
    import re

    body = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", body)
    return re.sub(r'<i class="(fa [^"]*)"></i>', lambda m: _ICONS.get(m.group(1), m.group(1)), body)


def html_page(body: str, title: str) -> str:
    """Wrap matplotlib's player markup in a complete, self-contained HTML document."""
    from html import escape

    body = _offline(body)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def player_markup(frames, fps: float) -> str:
    """matplotlib's JavaScript player (play, step, loop controls) around the frames, embedded as PNG."""
    import base64
    import tempfile

    from matplotlib.animation import HTMLWriter
    from matplotlib.figure import Figure

    class _Writer(HTMLWriter):  # the frames are already rendered: embed them instead of re-drawing the figure
        def add(self, frame):
            self._saved_frames.append(base64.encodebytes(frame_bytes_png(frame)).decode("ascii"))

    writer = _Writer(fps=fps, embed_frames=True, default_mode="loop")
    with tempfile.TemporaryDirectory() as tmp:  # HTMLWriter writes its page to a file
        out = Path(tmp) / "player.html"
        writer.setup(Figure(), out)  # the figure is only asked for its size and dpi
        for f in frames:
            writer.add(f)
        writer.finish()
        return out.read_text(encoding="utf-8")


def write_html(frames, path: Path, fps: float, title: str) -> Path:
    """A self-contained page: every frame embedded as PNG, with matplotlib's JavaScript player."""
    page = html_page(player_markup(frames, fps), title)
    return _atomic(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def frame_bytes_png(frame: np.ndarray) -> bytes:
    """One frame as PNG bytes (for notebooks and tests)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()
