"""A CUDA launch, block by block and barrier phase by phase (numbacnn.viz.cuda_grid), drawn from an observed run.

Every cell drawn comes from the trace's ``access`` log: what the real kernel's threads read and wrote under the
simulator (numbacnn.trace.cuda_observe), with the values they moved. Nothing here knows how a kernel works,
except where conv2d's tiled kernel keeps its patch and weights in its shared buffer (to lay the buffer out as a grid).
"""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure

COUNTS = ("global reads", "global writes", "shared reads", "shared writes")


def _plane_rc(flat, width):
    return flat // width, flat % width


def _plane(a):
    """The one plane drawn: a[0, 0] of an (1, 1, H, W) array, or a 2-D array itself (linear: rows = examples)."""
    return a[0, 0] if a.ndim == 4 else a


def _shared_layout(trace, size):
    """(rows, cols, cell(k) -> (r, c) or None, label) for the shared buffer of conv2d_forward_kernel2: its PH x PW
    input patch, then (after a blank row) the KH x KW weights; any other buffer: one row of ``size`` slots."""
    meta = trace.meta
    if meta["cuda"]["kernel"] == "conv2d_forward_kernel2":
        T = meta["cuda"]["block"][0]
        (sh, sw), (dh, dw) = meta["stride"], meta["dilation"]
        KH, KW = meta["weight_shape"][2:]
        PH, PW = (T - 1) * sh + (KH - 1) * dh + 1, (T - 1) * sw + (KW - 1) * dw + 1

        def cell(k):
            if k < PH * PW:
                return k // PW, k % PW
            k -= PH * PW
            return (PH + 1 + k // KW, k % KW) if k < KH * KW else None

        return PH + 1 + KH, max(PW, KW), cell, f"shared memory: the {PH}x{PW} input patch, then the {KH}x{KW} weights"
    if meta["cuda"]["kernel"] == "linear_matmul_kernel2":  # As (T x T tile of x), then Bs (T x T tile of w)
        T = meta["cuda"]["block"][0]

        def cell(k):
            if k < T * T:
                return k // T, k % T
            k -= T * T
            return (T + 1 + k // T, k % T) if k < T * T else None

        return 2 * T + 1, T, cell, f"shared memory: a {T}x{T} tile of x, then one of w"
    return 1, size, lambda k: (0, k) if k < size else None, "shared memory"


def cuda_grid(trace, *, compare=None, dpi: int = 100) -> Animation:
    """One frame per (block, barrier phase) of the observed launch that wrote ``trace.out``.

    ``trace``: an op trace of one plane (N = C = O = 1) made with device="cudasim" (trace_conv2d / trace_pool2d,
    or trace_linear: x (B, I) and out (B, O) are the planes),
    which holds the observed ``access`` log. ``compare``: optional {kernel number: counts dict} of other kernels
    of the same op on the same input, drawn beside this run's totals (why tiling pays, in counts).
    """
    if "access" not in trace.arrays:
        raise ValueError("trace has no observed CUDA run: trace it with device='cudasim'")
    out, x = trace.out, trace.x
    if out.ndim != x.ndim or (x.ndim == 4 and (out.shape[:2] != (1, 1) or x.shape[:2] != (1, 1))):
        raise ValueError(f"cuda_grid shows one input and one output plane, got input {x.shape}, output {out.shape}")
    cu = trace.meta["cuda"]
    names = [a[0] for a in cu["arrays"]]
    spaces = [a[1] for a in cu["arrays"]]
    code, flat, blk, thr, phase, write = trace.access.T
    values = trace.access_value
    written = {int(c) for c in code[write == 1]}
    out_code = next(k for k, a in enumerate(cu["arrays"])
                    if a[1] == "global" and k in written and tuple(a[2]) == tuple(out.shape))
    x_code = names.index("x") if "x" in names else names.index("a")  # linear_matmul_kernel2 calls x "a"
    shared = [k for k, s in enumerate(spaces) if s == "shared"]
    H, W = x.shape[-2:]
    HO, WO = out.shape[-2:]
    keys = sorted({(int(b), int(p)) for b, p in zip(blk, phase)})
    blocks = sorted({b for b, _ in keys})
    order = {b: k for k, b in enumerate(blocks)}
    gx, gy, _ = cu["grid"]
    bx, by, _ = cu["block"]
    per_block = bx * by * cu["block"][2]

    import matplotlib
    from matplotlib.collections import LineCollection

    colours = matplotlib.colormaps["tab10"](np.arange(len(blocks)) % 10)[:, :3]
    owner = np.full((HO, WO), -1)  # the block that wrote each output
    sel = (code == out_code) & (write == 1)
    owner[_plane_rc(flat[sel], WO)] = [order[int(b)] for b in blk[sel]]

    fig = new_figure(13, 7.0, dpi)
    has_shared = bool(shared)
    boxes = ([0.02, 0.1, 0.25, 0.66], [0.30, 0.1, 0.19, 0.66], [0.52, 0.1, 0.22, 0.66]) if has_shared else \
        ([0.02, 0.1, 0.33, 0.66], None, [0.39, 0.1, 0.33, 0.66])

    def grid_axes(box, rows, cols, title):
        ax = fig.add_axes(box)
        img = ax.imshow(np.ones((rows, cols, 3)), interpolation="nearest")
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
        ax.tick_params(labelsize=6, length=0, pad=1)
        ax.set_title(title, fontsize=style.FONT["label"])
        ax.add_collection(LineCollection([[(c + 0.5, -0.5), (c + 0.5, rows - 0.5)] for c in range(cols - 1)]
                                         + [[(-0.5, r + 0.5), (cols - 0.5, r + 0.5)] for r in range(rows - 1)],
                                         colors="#ffffff", linewidths=0.6))
        cell_pt = min(box[2] * 13 * 72 / cols, box[3] * 7.0 * 72 / rows)
        size = max(4.5, min(8.5, cell_pt / 3.4))
        texts = np.empty((rows, cols), dtype=object)
        for (r, c), _ in np.ndenumerate(texts):
            texts[r, c] = ax.text(c, r, "", ha="center", va="center", fontsize=size)
        return img, texts

    in_img, in_texts = grid_axes(boxes[0], H, W, f"input x ({H}x{W}): global memory")
    for (r, c), t in np.ndenumerate(in_texts):
        t.set_text(style.fmt(_plane(x)[r, c], 1))
    out_img, out_texts = grid_axes(boxes[2], HO, WO, f"output ({HO}x{WO}): colour = the block that wrote it")
    sh_img = sh_texts = None
    if has_shared:
        size = int(np.prod(cu["arrays"][shared[0]][2]))
        rows, cols, cell, label = _shared_layout(trace, size)
        sh_img, sh_texts = grid_axes(boxes[1], rows, cols, label)
    info = fig.text(0.76, 0.87, "", ha="left", va="top", fontsize=8.2, family="monospace", linespacing=1.35)
    # each thread of the block shown: its reads in this phase (global / shared), laid out like threadIdx
    t_cols = bx if by > 1 else min(bx, 8)
    t_rows = by if by > 1 else -(-bx // t_cols)
    th_ax = fig.add_axes([0.765, 0.02, 0.22, min(0.16, 0.03 * t_rows + 0.01)])
    th_ax.set_axis_off()
    th_ax.set_xlim(-0.5, t_cols - 0.5)
    th_ax.set_ylim(t_rows - 0.5, -0.5)
    th_ax.set_title("each thread, this phase: global / shared reads", fontsize=7.5, loc="left")
    th_texts = np.empty((t_rows, t_cols), dtype=object)
    for (r, c), _ in np.ndenumerate(th_texts):
        th_texts[r, c] = th_ax.text(c, r, "", ha="center", va="center", fontsize=6.5, family="monospace")
    fig.suptitle(f"{cu['kernel']} ({trace.op}) on the CUDA simulator: grid {tuple(cu['grid'])}, block "
                 f"{tuple(cu['block'])}; every cell is what the kernel's threads read or wrote",
                 fontsize=style.FONT["title"])
    caption = fig.text(0.5, 0.905, "", ha="center", va="center", fontsize=style.FONT["caption"])

    # per-thread counts of each block (all phases) and this run's totals
    is_shared = np.isin(code, shared)
    thread_key = blk * per_block + thr
    totals = trace.meta["cuda"]["counts"]
    compare_text = ""
    if compare:
        compare_text = "\n\nsame input, whole launch:\n" + "\n".join(
            f" kernel {k}: {c['global reads']:>5,} global reads\n"
            f"           {c['shared reads']:>5,} shared reads" for k, c in sorted(compare.items()))
        most, least = max(c["global reads"] for c in compare.values()), min(c["global reads"] for c in compare.values())
        if len(compare) > 1 and least:
            compare_text += f"\n tiling: {most / least:.1f}x fewer global reads"

    def block_counts(b):
        rows = blk == b
        out = {}
        for name, s, w in (("global reads", False, 0), ("global writes", False, 1), ("shared reads", True, 0),
                           ("shared writes", True, 1)):
            keys_ = thread_key[rows & (is_shared == s) & (write == w)] - b * per_block
            out[name] = np.bincount(keys_, minlength=per_block)
        return out

    counts_of = {b: block_counts(b) for b in blocks}

    def rc_block(b):
        return b % gx, (b // gx) % gy, b // (gx * gy)

    def update(f):
        b, p = keys[f]
        k = order[b]
        now = (blk == b) & (phase == p)
        # input: cells this block reads in this phase
        rgb = np.ones((H, W, 3)) * 0.97
        sel = now & (code == x_code) & (write == 0)
        rr, cc = _plane_rc(flat[sel] % (H * W), W)
        rgb[rr, cc] = 0.45 * colours[k] + 0.55
        in_img.set_data(rgb)
        # output: blocks done, this block's writes now
        rgb = np.ones((HO, WO, 3))
        done = (owner >= 0) & (owner < k)
        rgb[done] = 0.55 * colours[owner[done]] + 0.45
        later = owner > k
        rgb[later] = 0.12 * colours[owner[later]] + 0.88
        mine = owner == k
        rgb[mine] = 0.25 * colours[k] + 0.75
        sel = now & (code == out_code) & (write == 1)
        wr, wc = _plane_rc(flat[sel], WO)
        rgb[wr, wc] = colours[k]
        out_img.set_data(rgb)
        labels = {(int(r), int(c)): t for r, c, t in zip(wr, wc, thr[sel])}
        for (r, c), t in np.ndenumerate(out_texts):
            if (r, c) in labels:
                tid = labels[(r, c)]
                t.set_text(f"{tid % bx},{tid // bx % by}" if by > 1 else f"{tid}")
                t.set_fontweight("bold")
            elif done[r, c]:
                t.set_text(style.fmt(_plane(out)[r, c], 1))
                t.set_fontweight("normal")
            else:
                t.set_text("")
        # shared memory: this block's buffer so far; this phase's writes and reads
        if has_shared:
            rgb = np.ones(sh_texts.shape + (3,))
            for t in sh_texts.ravel():
                t.set_text("")
            upto = (blk == b) & (phase <= p) & (code == shared[0]) & (write == 1)
            for kk, v in zip(flat[upto], values[upto]):
                rc = cell(int(kk))
                if rc:
                    rgb[rc] = (0.93, 0.93, 0.93)
                    sh_texts[rc].set_text(style.fmt(v, 1))
            for w_, shade in ((1, 0.45), (0, 0.2)):
                sel = now & (code == shared[0]) & (write == w_)
                for kk in flat[sel]:
                    rc = cell(int(kk))
                    if rc:
                        rgb[rc] = shade * colours[k] + (1 - shade)
            sh_img.set_data(rgb)
        # text panel
        c = counts_of[b]
        phase_counts = {name: int(((is_shared == ("shared" in name)) & (write == ("writes" in name)) & now).sum())
                        for name in COUNTS}
        verbs = []
        if phase_counts["shared writes"]:
            verbs.append("copy a tile from global into shared memory")
        elif phase_counts["global reads"]:
            verbs.append("read their inputs from global memory")
        if phase_counts["shared reads"]:
            verbs.append("compute from shared memory")
        if phase_counts["global writes"]:
            verbs.append("write their outputs")
        barrier = "" if p == 0 else f"after cuda.syncthreads() #{p} (every thread of the block arrived): "
        caption.set_text(f"block {k + 1} of {len(blocks)}, phase {p}: {barrier}threads " + ", ".join(verbs))
        reads = now & ~is_shared & (write == 0)
        by_array = ", ".join(f"{names[a]} {int((code[reads] == a).sum())}" for a in np.unique(code[reads]))
        lines = [f"blockIdx = {rc_block(b)}", f"phase {p} of this block:"]
        lines += [f"  {phase_counts[name]:>5,} {name}" + (f" ({by_array})" if name == "global reads" else "")
                  for name in COUNTS if phase_counts[name]]
        lines.append(f"\nper thread, this block\n{'':14}min  max")
        lines += [f"  {name:<13}{int(c[name].min()):>3}  {int(c[name].max()):>3}" for name in COUNTS
                  if c[name].max()]
        lines.append(f"\nthis launch ({totals['races']} races,\n {totals['out-of-bounds']} out-of-bounds):")
        lines += [f"  {totals[name]:>6,} {name}" for name in COUNTS]
        info.set_text("\n".join(lines) + compare_text)
        here = now & (write == 0)
        g_reads = np.bincount(thr[here & ~is_shared], minlength=per_block)
        s_reads = np.bincount(thr[here & is_shared], minlength=per_block)
        for t in range(per_block):
            r, c = divmod(t, t_cols)
            if r < t_rows:
                th_texts[r, c].set_text(f"{g_reads[t]}/{s_reads[t]}")
        return dynamic

    dynamic = [in_img, out_img, *out_texts.ravel(), info, caption, *th_texts.ravel()]
    if has_shared:
        dynamic += [sh_img, *sh_texts.ravel()]
    return Animation(fig, update, len(keys), name="cuda-grid", title="CUDA blocks, threads and barriers",
                     artists={"texts": out_texts, "info": info, "caption": caption, "block_of_cell": owner,
                              "frames": keys, "shared_texts": sh_texts,
                              "thread_texts": th_texts},
                     record=trace, dynamic=dynamic)
