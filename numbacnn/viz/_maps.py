"""Heatmaps of model traces shared by viz.features and viz.sgd_trace (numbacnn.viz._maps): arrays as 2-D
pictures, per-frame colour limits, the colour scheme of a column."""
from __future__ import annotations

import math

import numpy as np

from . import style


def as_2d(a) -> np.ndarray:
    """A 1-D vector as a near-square block (padded with NaN), 2-D kept; (C, H, W) handled by the caller."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        return a
    v = a.ravel()
    cols = min(len(v), max(1, math.ceil(math.sqrt(len(v) * 1.5))))
    rows = math.ceil(len(v) / cols)
    out = np.full(rows * cols, np.nan)
    out[:len(v)] = v
    return out.reshape(rows, cols)


def mosaic(a) -> np.ndarray:
    """A parameter as one 2-D picture: (O, C, KH, KW) -> its O*C kernels tiled in reading order (kernel (o, c) at
    tile o*C + c) with NaN gaps; 2-D kept; 1-D as a block."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 4:
        O, C, KH, KW = a.shape
        n = O * C
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        out = np.full((rows * (KH + 1) - 1, cols * (KW + 1) - 1), np.nan)
        for k, tile in enumerate(a.reshape(n, KH, KW)):
            r, c = divmod(k, cols)
            out[r * (KH + 1):r * (KH + 1) + KH, c * (KW + 1):c * (KW + 1) + KW] = tile
        return out
    if a.ndim == 2:
        return a
    return as_2d(a)


def imshow(ax, shape, kw):
    import matplotlib

    cmap = matplotlib.colormaps[kw["cmap"]].with_extremes(bad="white")
    im = ax.imshow(np.zeros(shape), cmap=cmap, vmin=kw["vmin"], vmax=kw["vmax"], interpolation="nearest",
                   aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def frame_limits(d) -> np.ndarray:
    """Per frame: the colour limit of one column, d (S, channels, h, w) -> (S,) positive floats.

    The 99.5th percentile of |values| in that frame (robust: one outlier does not wash the maps out).
    """
    out = np.ones(len(d))
    for f, a in enumerate(d):
        v = np.abs(a[np.isfinite(a)])
        if v.size:
            m = float(np.percentile(v, 99.5))
            out[f] = m if m > 0 else (float(v.max()) if v.max() > 0 else 1.0)
    return out


def column_scheme(signed: bool) -> dict:
    """The colour map of a column (diverging for signed data, grey otherwise); its limits are set per frame."""
    return {"cmap": style.SIGNED_CMAP if signed else style.IMAGE_CMAP, "vmin": -1.0 if signed else 0.0, "vmax": 1.0}


def range_text(m: float, signed: bool) -> str:
    return f"±{m:.2g}" if signed else f"0 – {m:.2g}"
