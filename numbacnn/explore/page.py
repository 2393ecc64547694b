"""One self-contained HTML page (numbacnn.explore.page): the arrays as a JavaScript literal, the page's CSS and
hand-written JavaScript inlined from numbacnn/explore/assets, nothing fetched (no CDN, fonts or requests).

``Page`` is what numbacnn.explore's functions return: ``.html`` (str), ``.save(path)`` (atomic), ``.nbytes``, and
``_repr_html_`` for Jupyter (the page in an iframe's srcdoc, so several pages in one notebook do not collide).
"""
from __future__ import annotations

import html as _html
import json
from importlib import resources

import numpy as np

from ..viz import style

D2L = "https://d2l.ai/"


def asset(name: str) -> str:
    """The text of numbacnn/explore/assets/<name>."""
    return resources.files("numbacnn.explore").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# numbers -> a compact JavaScript literal (float32 exactly, in their shortest decimal form)


class Raw(str):
    """Text placed into the JavaScript literal as it is (an already encoded array)."""


def _f32_text(v: np.float32) -> str:
    if not np.isfinite(v):
        return "NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    s = np.format_float_positional(v, unique=True, trim="-")
    return s[1:] if s.startswith("0.") else ("-" + s[2:] if s.startswith("-0.") else s)


def f32(a) -> Raw:
    """A flat list of float32 numbers, each in its shortest form that reads back as the same float32."""
    flat = np.asarray(a, dtype=np.float32).ravel()
    memo = {}
    out = []
    for v in flat.tolist():
        t = memo.get(v)
        if t is None:
            t = memo[v] = _f32_text(np.float32(v))
        out.append(t)
    return Raw("[" + ",".join(out) + "]")


def g6(a) -> Raw:
    """A flat list of float64 numbers rounded to 6 significant digits (the page says so where it shows them)."""
    out = []
    for v in np.asarray(a, dtype=np.float64).ravel().tolist():
        if v != v:
            out.append("NaN")
        elif v in (float("inf"), float("-inf")):
            out.append("Infinity" if v > 0 else "-Infinity")
        else:
            t = f"{v:.6g}"
            out.append("0" if t == "-0" else t)
    return Raw("[" + ",".join(out) + "]")


def ints(a) -> Raw:
    return Raw(json.dumps(np.asarray(a, dtype=np.int64).tolist(), separators=(",", ":")))


def js(obj) -> str:
    """obj (dicts, lists, str, numbers, bool, None, Raw) as a JavaScript literal, safe inside <script>."""
    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + js(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(js(v) for v in obj) + "]"
    if isinstance(obj, (np.integer,)):
        return str(int(obj))
    if isinstance(obj, (float, np.floating)):
        return g6([obj])[1:-1]
    return json.dumps(obj).replace("</", "<\\/")


def colormaps() -> dict:
    """The animations' colour maps (numbacnn.viz.style) as 256 hex colours each, for the page's cells."""
    from matplotlib import colormaps as cms
    from matplotlib.colors import to_hex

    def lut(name):
        cm = cms[name]
        return [to_hex(cm(i / 255)) for i in range(256)]

    return {"signed": lut(style.SIGNED_CMAP), "gray": lut(style.IMAGE_CMAP), "window": style.WINDOW,
            "chosen": style.CHOSEN, "padding": style.PADDING, "series": style.SERIES}


# ------------------------------------------------------------------------------------------------
# the page


class Page:
    """A written explorer page: ``html``, ``save(path)``, ``nbytes``; shows itself inline in Jupyter."""

    def __init__(self, html: str, name: str):
        self.html, self.name = html, name

    @property
    def nbytes(self) -> int:
        return len(self.html.encode("utf-8"))

    def save(self, path):
        """Write the page to ``path`` atomically (a complete file or none); returns the path."""
        from .._io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{_html.escape(self.html, quote=True)}" title="numbacnn explore {self.name}" '
                'style="width:100%;height:820px;border:1px solid #ddd"></iframe>')

    def __repr__(self):
        return f"<numbacnn.explore page {self.name!r}, {self.nbytes / 1e6:.2f} MB>"


def build(name: str, title: str, intro_html: str, data: dict) -> Page:
    """Assemble a page: ``intro_html`` (trusted, written by numbacnn) above the controls that assets/<name>.js
    builds from ``data`` (exposed to the script as NC_DATA, the colour maps as NC_STYLE)."""
    body = (f"<header><h1>{_html.escape(title)}</h1><div class=intro>{intro_html}</div></header>"
            f'<main id="app"></main><footer>Written by numbacnn: every number on this page was computed by '
            f"numbacnn's kernels when the page was written; the page itself only looks them up.</footer>")
    scripts = (f"<script>window.NC_ERRORS=[];window.addEventListener('error',function(e){{"
               f"window.NC_ERRORS.push(String(e.message))}});</script>"
               f"<script>const NC_STYLE={js(colormaps())};\nconst NC_DATA={js(data)};</script>"
               f"<script>{asset('explore.js')}</script><script>{asset(name + '.js')}</script>")
    html = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_html.escape(title)}</title><style>{asset('explore.css')}</style></head>"
            f"<body class=\"page-{name}\">{body}{scripts}</body></html>")
    return Page(html, name)
