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


def fmt(v, digits: int = 2) -> str:
    """A number as drawn in a cell: integers without a decimal point, else at most ``digits`` decimals."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if abs(v - round(v)) < 1e-9 and abs(v) < 1e5:
        return str(int(round(v))) if round(v) != 0 else "0"
    if abs(v) >= 1000 or abs(v) < 10.0 ** -digits:
        return f"{v:.{max(digits - 1, 1)}e}"
    s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


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
