"""Feature maps across training (numbacnn.viz.features): one example through every layer of a model trace
(numbacnn.trace.load(path) -> Trace), step after step."""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure
from ._maps import as_2d, column_scheme, frame_limits, imshow, range_text


def _scalars_at(trace, steps):
    sc = trace.scalars()
    loss = {int(s): l for s, l in zip(sc["step"], sc["loss"])}
    acc = {int(s): a for s, a in zip(sc["step"], sc["acc"])}
    return sc, [loss.get(int(s), np.nan) for s in steps], [acc.get(int(s), np.nan) for s in steps]


def features(trace, *, example: int = 0, max_channels: int = 6, layers=None, source: str | None = None,
             dpi: int = 100) -> Animation:
    """One frame per recorded step: example ``example``'s input and every layer's output (up to
    ``max_channels`` channels each, one row per channel; vectors as blocks), plus the loss.

    ``source``: "probe" (the trace's fixed examples, the same image at every step: the default when the trace
    has a probe) or "batch" (the first examples of each recorded step's batch, a new image at each step).

    Colours: grey for non-negative layers (0 black), the diverging map centred at zero for signed ones; each
    column is scaled per frame to its 99.5th percentile of |value|, printed under its name, so early
    (small) activations stay visible. ``trace``: numbacnn.trace.Trace (traced with samples >= example + 1).
    """
    steps = list(trace.steps)
    if not steps:
        raise ValueError(f"{trace.path!r} holds no recorded steps")
    names = [str(l) for l in (trace.layers if layers is None else layers)]
    if not names:
        raise ValueError(f"{trace.path!r} recorded no layers (traced with samples=0?)")
    types = {e["name"]: e.get("type", "") for e in trace.manifest["layers"]}
    names = [n for n in names if types.get(n) != "Flatten"]
    has_probe = bool(getattr(trace, "has_probe", False))
    source = source or ("probe" if has_probe else "batch")
    if source not in ("probe", "batch"):
        raise ValueError(f"source must be 'probe' or 'batch', got {source!r}")
    if source == "probe" and not has_probe:
        raise ValueError(f"{trace.path!r} has no fixed probe (train-lenet --trace-samples N records one): "
                         "use source='batch'")
    read = trace.probe_map if source == "probe" else trace.feature_map
    first = read(names[0], steps[0], "x")
    if example >= first.shape[0]:
        raise ValueError(f"example {example} was not traced: the trace holds {first.shape[0]} "
                         f"{'probe examples' if source == 'probe' else 'examples per step'}")
    # collect every frame's arrays once: (layer -> (S, channels, h, w))
    cols = [("input", "x", names[0])] + [(f"{n}: {types.get(n, '')}", "y", n) for n in names]
    data, shapes = [], []
    for title, kind, n in cols:
        per = []
        for s in steps:
            a = np.asarray(read(n, s, kind)[example], dtype=np.float64)
            per.append(a[:max_channels] if a.ndim == 3 else as_2d(a)[None])
        shapes.append("×".join(map(str, a.shape)))
        data.append(np.stack(per))
    nrow = max(d.shape[1] for d in data)
    cell = 1.05  # inches per map
    fig_w = max(9.0, 0.35 + cell * 1.12 * len(cols))
    maps_h = cell * nrow
    fig_h = 1.35 + maps_h + 0.35 + 1.5
    fig = new_figure(fig_w, fig_h, dpi)
    top_y = 1 - 1.35 / fig_h
    gs = fig.add_gridspec(2, 1, height_ratios=[maps_h, 1.25], left=0.2 / fig_w, right=1 - 0.15 / fig_w,
                          top=top_y, bottom=0.45 / fig_h, hspace=0.45 / (maps_h + 1.25) * 2.4)
    top = gs[0].subgridspec(nrow, len(cols), wspace=0.12, hspace=0.08)
    images, heads, signs, limits = [], [], [], []
    for c, ((title, kind, n), d) in enumerate(zip(cols, data)):
        finite = d[np.isfinite(d)]
        signed = bool(finite.size) and float(finite.min()) < 0
        lim = frame_limits(d)
        col = []
        for r in range(d.shape[1]):
            ax = fig.add_subplot(top[r, c])
            col.append(imshow(ax, d.shape[2:], column_scheme(signed)))
            if r == 0:
                head = ax.set_title("", fontsize=style.FONT["label"], pad=3, linespacing=1.25)
                heads.append((head, (title if len(title) < 16 else title[:15] + "…") + f"\n{shapes[c]}"))
        images.append(col)
        signs.append(signed)
        limits.append(lim)
    which = (f"fixed example {example} (the same image at every step)" if source == "probe" else
             f"example {example} of each step's batch (a new image each step)")
    fig.suptitle(f"Feature maps of {which} through the network, across training "
                 f"(channels 0–{min(max_channels, nrow) - 1}, one per row)", fontsize=style.FONT["title"],
                 y=1 - 0.22 / fig_h)
    caption = fig.text(0.5, 1 - 0.55 / fig_h, "", ha="center", va="center", fontsize=style.FONT["caption"])
    fig.text(0.5, 1 - 0.82 / fig_h, "grey: values ≥ 0 (black = 0); blue/red: signed, white = 0. Each column is "
             "scaled per step to the range under its name.", ha="center", va="center", fontsize=8.5,
             color="#444444")
    box = gs[1].get_position(fig)  # the loss curve, with room on the left for its axis labels
    l_ax = fig.add_axes((0.8 / fig_w, box.y0, 1 - 1.0 / fig_w, box.height))
    sc, loss_at, acc_at = _scalars_at(trace, steps)
    if len(sc["step"]):
        l_ax.plot(sc["step"], sc["loss"], color=style.SERIES["sgd"], lw=1.2)
    (mark,) = l_ax.plot([], [], "o", color=style.WINDOW, ms=8, zorder=5)
    l_ax.set_xlabel("step", fontsize=9, labelpad=1)
    l_ax.set_ylabel("training loss", fontsize=9)
    l_ax.tick_params(labelsize=8)
    l_ax.grid(alpha=0.3)
    dynamic = [im for col in images for im in col] + [h for h, _ in heads] + [mark, caption]

    def update(f):
        for col, d, signed, lim, (head, text) in zip(images, data, signs, limits, heads):
            m = lim[f]
            for r, im in enumerate(col):
                im.set_data(d[f, r])
                im.set_clim(-m if signed else 0.0, m)
            head.set_text(f"{text}\n{range_text(m, signed)}")
        s = steps[f]
        if np.isfinite(loss_at[f]):
            mark.set_data([s], [loss_at[f]])
        acc = f", batch accuracy {acc_at[f]:.0%}" if np.isfinite(acc_at[f]) else ""
        loss = f": loss {loss_at[f]:.4f}" if np.isfinite(loss_at[f]) else ""
        caption.set_text(f"step {s} (recorded step {f + 1} of {len(steps)}){loss}{acc}")
        return dynamic

    return Animation(fig, update, len(steps), name="features", title="Feature maps across training",
                     artists={"images": images, "columns": [c[0] for c in cols], "caption": caption,
                              "heads": [h for h, _ in heads]},
                     record=dict(steps=steps, data=data, limits=limits, signed=signs, source=source),
                     dynamic=dynamic)
