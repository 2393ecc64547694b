"""One colour scheme and one number format for every animation (numbacnn.viz.style).

Signed values (kernels, products, outputs, gradients, buffers) use a diverging map centred at zero:
blue < 0 < red, white at 0. Non-negative images use grey (0 black, 1 white), so the book's
"dark band" of zeros looks dark. Highlights: the current window is orange, the chosen element of
max/min pooling green, padding cells hatched grey.
"""
from __future__ import annotations

import numpy as np

SIGNED_CMAP = "RdBu_r"
IMAGE_CMAP = "gray"
WINDOW = "#ff8c00"  # the current window / the cell being written
CHOSEN = "#00a651"  # the element max/min pooling picks
PADDING = "#d9d9d9"  # padding cells (drawn hatched)
PENDING = "#f4f4f4"  # output cells not yet computed
TEXT_DARK, TEXT_LIGHT = "#111111", "#ffffff"
# trajectories, arrows and curves
SERIES = {"sgd": "#1f77b4", "momentum": "#d62728", "nesterov": "#2ca02c",
          "gradient": "#9467bd", "buffer": "#ff7f0e", "update": "#111111"}
FONT = {"title": 11, "label": 9, "cell": 9, "caption": 10}
MIN_CELL_FONT = 7.5  # pt: a grid whose numbers would be smaller shows colours only (and says so)


def fmt(v, digits: int = 2) -> str:
    """A number as drawn in a caption: integers without a decimal point, else at most ``digits`` decimals
    (scientific when that would print 0 or the number is >= 1000)."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if abs(v - round(v)) < 1e-9 and abs(v) < 1e5:
        return str(int(round(v))) if round(v) != 0 else "0"
    if abs(v) >= 1000 or float(f"{abs(v):.{digits}f}") == 0:  # 0.01 stored as float32 0.0099999998 stays 0.01
        return f"{v:.{max(digits - 1, 1)}e}"
    return _fixed(v, digits)


def _fixed(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s in ("-0", "") else s


def number_format(values, digits: int = 2):
    """One format for every number of a grid (all its frames), picked from its largest |value| m, so one grid
    never mixes ``0.01`` with ``1.0e-02``: ``fmt(v) -> str``.

    Integers as integers; 1 <= m < 100: ``digits`` decimals (fewer from 100 on); m < 1: enough decimals for
    two significant digits of m (at most ``digits + 2``); m >= 1e4 or m < 10^-(digits+1): scientific
    (``1.2e-05``). Values much smaller than m may print as 0. Trailing zeros are dropped (0.50 -> 0.5).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    m = float(np.abs(v).max()) if v.size else 0.0
    if m == 0 or (m < 1e5 and bool(np.all(v == np.round(v)))):
        return lambda x: fmt(x, digits)
    if m >= 1e4 or m < 10.0 ** -(digits + 1):
        return lambda x: (str(float(x)) if not np.isfinite(x) else "0" if x == 0 else f"{float(x):.1e}")
    if m >= 1000:
        d = 0
    elif m >= 100:
        d = min(digits, 1)
    elif m >= 1:
        d = digits
    else:
        d = min(digits + 2, max(digits, 1 - int(np.floor(np.log10(m)))))
    return lambda x: str(float(x)) if not np.isfinite(x) else _fixed(float(x), d)


def signed_limits(*arrays) -> tuple[float, float]:
    """Symmetric (vmin, vmax) around zero covering every array (at least +-1e-12)."""
    m = max((float(np.nanmax(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    m = m if m > 0 else 1.0
    return -m, m


def image_limits(*arrays) -> tuple[float, float]:
    """(0, max) for non-negative data."""
    m = max((float(np.nanmax(a)) for a in arrays if np.size(a)), default=0.0)
    return 0.0, (m if m > 0 else 1.0)


def scheme(*arrays) -> dict:
    """imshow keywords for data: grey for non-negative arrays, the diverging map centred at zero otherwise."""
    lo = min((float(np.nanmin(a)) for a in arrays if np.size(a)), default=0.0)
    if lo >= 0:
        vmin, vmax = image_limits(*arrays)
        return {"cmap": IMAGE_CMAP, "vmin": vmin, "vmax": vmax}
    vmin, vmax = signed_limits(*arrays)
    return {"cmap": SIGNED_CMAP, "vmin": vmin, "vmax": vmax}


def signed(*arrays) -> dict:
    """imshow keywords for signed quantities: the diverging map centred at zero, whatever the data."""
    vmin, vmax = signed_limits(*arrays)
    return {"cmap": SIGNED_CMAP, "vmin": vmin, "vmax": vmax}


def text_color(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    r, g, b = rgba[:3]
    return TEXT_DARK if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else TEXT_LIGHT
