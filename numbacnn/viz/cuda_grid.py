"""Which CUDA block and thread computed each output (numbacnn.viz.cuda_grid), from ``block``/``thread`` trace fields."""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure


def cuda_grid(trace, *, dpi: int = 100) -> Animation:
    """One frame per CUDA block, in block-index order: the block's threads light up on the output map
    (each cell labelled with its threadIdx), earlier blocks keep their colour and show the value computed.

    ``trace``: an op trace (numbacnn.trace.trace_conv2d / trace_pool2d with device="cuda" or "cudasim") of
    one output plane (N = 1, one output channel).
    """
    if "block" not in trace.arrays:
        raise ValueError("trace has no CUDA thread map: trace it with target='cuda' or 'cudasim'")
    out = trace.out
    if out.shape[0] != 1 or out.shape[1] != 1:
        raise ValueError(f"cuda_grid shows one output plane, got output shape {out.shape}")
    HO, WO = out.shape[2:]
    _, _, i, j = trace.pos.T
    block, thread = trace.block, trace.thread
    layout = trace.meta.get("layout", "simple")
    ids = np.unique(block[:, ::-1], axis=0)[:, ::-1]  # distinct blocks ordered by (z, y, x): x varies fastest
    F = len(ids)
    bid = np.full((HO, WO), -1)
    for k, b in enumerate(ids):
        sel = np.all(block == b, axis=1)
        bid[i[sel], j[sel]] = k
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    base = cmap(np.arange(F) % 20)[:, :3]
    fig = new_figure(11, 5.8, dpi)
    ax = fig.add_axes([0.03, 0.08, 0.52, 0.76])
    img = ax.imshow(np.ones((HO, WO, 3)), interpolation="nearest", extent=(-0.5, WO - 0.5, HO - 0.5, -0.5))
    ax.set_xlim(-0.5, WO - 0.5)
    ax.set_ylim(HO - 0.5, -0.5)
    ax.set_xticks(range(WO))
    ax.set_yticks(range(HO))
    ax.tick_params(labelsize=7, length=0, pad=1)
    ax.set_title("output map: colour = the block that computed each element", fontsize=style.FONT["label"])
    # block borders
    segs = []
    for r in range(HO):
        for c in range(WO):
            if c + 1 < WO and bid[r, c] != bid[r, c + 1]:
                segs.append([(c + 0.5, r - 0.5), (c + 0.5, r + 0.5)])
            if r + 1 < HO and bid[r, c] != bid[r + 1, c]:
                segs.append([(c - 0.5, r + 0.5), (c + 0.5, r + 0.5)])
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segs, colors="#222222", linewidths=2.0, zorder=3))
    ax.add_collection(LineCollection([[(c + 0.5, -0.5), (c + 0.5, HO - 0.5)] for c in range(WO - 1)]
                                     + [[(-0.5, r + 0.5), (WO - 0.5, r + 0.5)] for r in range(HO - 1)],
                                     colors="#ffffff", linewidths=0.6, zorder=2))
    cell_pt = min(0.52 * 11 * 72 / WO, 0.76 * 5.8 * 72 / HO)
    fs = max(5.0, min(9.0, cell_pt / 3.6))
    texts = np.empty((HO, WO), dtype=object)
    for r in range(HO):
        for c in range(WO):
            texts[r, c] = ax.text(c, r, "", ha="center", va="center", fontsize=fs, zorder=4)
    info = fig.text(0.59, 0.80, "", ha="left", va="top", fontsize=9.5, family="monospace", linespacing=1.5)
    fig.suptitle(f"CUDA launch of {trace.op} ({trace.meta.get('target')}, {layout} layout): "
                 f"one thread per output element", fontsize=style.FONT["title"])
    caption = fig.text(0.5, 0.905, "", ha="center", va="center", fontsize=style.FONT["caption"])
    nb = block.max(axis=0) + 1
    value = {(int(a), int(b)): v for a, b, v in zip(i, j, trace.result)}
    thr_of = {(int(a), int(b)): tuple(int(v) for v in t) for a, b, t in zip(i, j, thread)}
    if layout == "tiled":
        bdim = (int(thread[:, 0].max()) + 1, int(thread[:, 1].max()) + 1)
        formula = (f"i = blockIdx.y * {bdim[1]} + threadIdx.y\nj = blockIdx.x * {bdim[0]} + threadIdx.x")
        label = lambda t: f"{t[1]},{t[0]}"
        legend = "cell text: threadIdx (y,x)"
    else:
        bdim = (int(thread[:, 0].max()) + 1,)
        formula = (f"t = blockIdx.x * {bdim[0]} + threadIdx.x\ni = t // {WO},  j = t % {WO}")
        label = lambda t: f"{t[0]}"
        legend = "cell text: threadIdx.x"

    def update(f):
        rgb = np.ones((HO, WO, 3))
        done = (bid >= 0) & (bid < f)
        now = bid == f
        later = bid > f
        rgb[done] = 0.55 * base[bid[done]] + 0.45
        rgb[now] = base[bid[now]]
        rgb[later] = 0.15 * base[bid[later]] + 0.85
        img.set_data(rgb)
        for (r, c), t in np.ndenumerate(texts):
            if now[r, c]:
                t.set_text(label(thr_of[(r, c)]))
                t.set_fontweight("bold")
            elif done[r, c]:
                t.set_text(style.fmt(value[(r, c)], 2))
                t.set_fontweight("normal")
            else:
                t.set_text("")
        b = ids[f]
        cells = np.argwhere(now)
        r0, c0 = cells.min(axis=0)
        r1, c1 = cells.max(axis=0)
        info.set_text(f"grid  = {tuple(int(v) for v in nb)} blocks\nblock = {bdim} threads\n\n"
                      f"this frame: blockIdx = ({b[0]}, {b[1]}, {b[2]})\n"
                      f"  {len(cells)} of {int(np.prod(bdim))} threads have an output element:\n"
                      f"  rows {r0}..{r1}, cols {c0}..{c1}\n\n{formula}\n\n"
                      f"{legend}; earlier blocks\nshow the value they wrote")
        caption.set_text(f"block {f + 1} of {F}: blocks run in parallel in any order; shown in blockIdx order")
        return [img, *texts.ravel(), info, caption]

    dynamic = [img, *texts.ravel(), info, caption]
    return Animation(fig, update, F, name="cuda-grid", title="CUDA blocks and threads",
                     artists={"texts": texts, "info": info, "caption": caption, "block_of_cell": bid},
                     record=trace, dynamic=dynamic)
