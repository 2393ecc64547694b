"""Pooling drawn window by window (numbacnn.viz.pool) from numbacnn.trace.trace_pool2d: the window, the element
max/min picks, the mean avg computes."""
from __future__ import annotations

import numpy as np

from . import style
from ._window import Equation, Result, Scene, Source, padded, render, span_text, window_cells

NAMES = {"max_pool2d": "max", "min_pool2d": "min", "avg_pool2d": "avg"}


def _summary(t, m) -> str:
    mode = NAMES[t.op]
    if mode == "avg":
        return f"mean = {style.fmt(t.sum[m], 3)} / {int(t.divisor[m])} = {style.fmt(t.result[m], 3)}"
    return f"{mode} = {style.fmt(t.result[m], 3)}"


def pool(*traces, dpi: int = 100):
    """Animate one or more pooling traces of the same input and windows (e.g. max, avg and min side by side).

    Each trace: numbacnn.trace.trace_pool2d(x, mode, ...) with x of shape (1, 1, H, W). One frame per window.
    """
    if not traces:
        raise ValueError("pool needs at least one trace")
    t0 = traces[0]
    for t in traces:
        if t.op not in NAMES:
            raise ValueError(f"traces must come from trace_pool2d, got op={t.op!r}")
        if t.x.shape[:2] != (1, 1):
            raise ValueError(f"the pooling animation shows one plane: x must have shape (1, 1, H, W), got {t.x.shape}")
        if len(t) != len(t0) or not np.array_equal(t.rows, t0.rows) or not np.array_equal(t.cols, t0.cols):
            raise ValueError("every trace must pool the same input with the same windows")
    F = len(t0)
    _, _, H, W = t0.x.shape
    ph, pw = t0.meta["padding"]
    pads = (ph, _extra(t0.rows, H), pw, _extra(t0.cols, W))
    pad_value = {"max": -np.inf, "min": np.inf}.get(NAMES[t0.op], 0.0) if len(traces) == 1 else 0.0
    vals, mask = padded(t0.x[0, 0], pads, pad_value)
    cells = np.stack([window_cells(t0.rows[m], t0.cols[m], ph, pw) for m in range(F)])
    active = np.ones(F, bool)
    src = Source(vals, mask, "input x" + (" (hatched: padding)" if mask.any() else ""), cells, active,
                 (list(range(-ph, H + pads[1])), list(range(-pw, W + pads[3]))), style.scheme(t0.x))
    a_scheme = style.scheme(t0.x)
    rows, results = [], []
    order = np.full(t0.out.shape[2:], -1)
    _, _, i, j = t0.pos.T
    order[i, j] = np.arange(F)
    for k, t in enumerate(traces):
        mode = NAMES[t.op]
        marks = t.chosen_pq if mode != "avg" else None
        title = {"max": "window: the largest wins", "min": "window: the smallest wins",
                 "avg": "window: every cell counts"}[mode]
        rows.append(Equation(a=t.window, b=None, p=None, a_pad=t.pad, titles=(title, "", ""), op="",
                             sums=[_summary(t, m) for m in range(F)], active=active, source=src if k == 0 else None,
                             a_scheme=a_scheme, marks=marks))
        results.append(Result(t.out[0, 0], order, f"{mode} pooling output", style.scheme(t0.x)))
    size, stride = t0.meta["kernel_size"], t0.meta["stride"]
    opts = f"{size[0]}x{size[1]} windows, stride {_pair(stride)}" + (f", padding {_pair((ph, pw))}" if ph or pw else "")
    captions = []
    for m in range(F):
        where = f"y[{i[m]}, {j[m]}] from x {span_text('row', t0.rows[m])}, {span_text('col', t0.cols[m])}"
        captions.append(f"{where}:  " + ",  ".join(_summary(t, m) for t in traces))
    modes = " vs. ".join(NAMES[t.op] for t in traces)
    title = f"{modes.capitalize()} pooling ({opts})" if len(traces) > 1 else f"{NAMES[t0.op]} pooling ({opts})"
    scene = Scene(title=title, captions=captions, rows=rows, results=results, name="pool", width=10.0,
                  ratios=(1.2, 0.8, 0.9))
    return render(scene, record=traces if len(traces) > 1 else t0, dpi=dpi)


def _extra(idx, n):
    """Rows/columns beyond the input's end that windows reach (the bottom/right padding)."""
    return int(max(0, idx.max() - (n - 1)))


def _pair(p):
    a, b = p
    return str(a) if a == b else f"{a}x{b}"
