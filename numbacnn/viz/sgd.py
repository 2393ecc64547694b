"""SGD drawn (numbacnn.viz.sgd): ``sgd_paths``, SGD, momentum and Nesterov side by side on a 2-D loss with arrows
for gradient, momentum buffer and update (numbacnn.scenarios.sgd_paths computes them); ``sgd_trace``, a
parameter's gradient, momentum buffer and update over the recorded steps of a training trace."""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure
from ._maps import column_scheme, frame_limits, imshow, mosaic, range_text

TITLES = {"sgd": "plain SGD", "momentum": "momentum", "nesterov": "Nesterov momentum"}


def _fmt_vec(v) -> str:
    return "(" + ", ".join(style.fmt(x, 3) for x in v) + ")"


def _clip(p, end, box):
    """The arrow's end, pulled back along its direction into the plot box grown by its own size on every side
    (a diverging run has arrows 1e30 long); the start itself when p is outside that box or not finite."""
    x0, x1, y0, y1 = box
    lo = np.array([x0 - (x1 - x0), y0 - (y1 - y0)])
    hi = np.array([x1 + (x1 - x0), y1 + (y1 - y0)])
    p, end = np.asarray(p, float), np.asarray(end, float)
    if not (np.all(np.isfinite(p)) and np.all(p >= lo) and np.all(p <= hi)):
        return p
    d = np.where(np.isfinite(end), end, p) - p
    t = 1.0
    for k in range(2):
        if d[k] > 0:
            t = min(t, (hi[k] - p[k]) / d[k])
        elif d[k] < 0:
            t = min(t, (lo[k] - p[k]) / d[k])
    return p + max(t, 0.0) * d


def _overflow_step(path):
    """The step whose update overflowed float64 (its p became nan), or None."""
    bad = ~np.all(np.isfinite(path.positions), axis=1)
    return int(np.argmax(bad)) - 1 if bad.any() else None


def _numbers(path, k, overflow, box) -> str:
    """Frame k's numbers of one optimizer, one short line each so they fit under the panel even when the run
    diverges (values like -1.25e+92)."""
    x0, x1, y0, y1 = box
    p, g, b, d = path.positions[k], path.grads[k], path.buffers[k], path.updates[k]
    where = ""
    if overflow is not None and k > overflow:
        where = f"  step {overflow} overflowed"
    elif not (x0 <= p[0] <= x1 and y0 <= p[1] <= y1):
        where = "  off the plot"
    return "\n".join([f"p = {_fmt_vec(p)}{where}", f"f(p) = {style.fmt(path.losses[k], 3)}",
                      f"g = {_fmt_vec(g)}",
                      f"b = {_fmt_vec(b)}" if path.hyper["momentum"] else "b   (no momentum buffer)",
                      f"Δ = {_fmt_vec(d)}"])


def sgd_paths(run, *, dpi: int = 100) -> Animation:
    """One frame per step k = 0 … steps − 1 (counted as the loss plot's x axis counts): each optimizer at p_k with
    arrows −lr·g_k (gradient), −lr·b_k (momentum buffer after the step) and the update p_{k+1} − p_k; the loss of
    every optimizer below.

    ``run``: the dict of numbacnn.scenarios.sgd_paths (formula, box, minimum, grid, paths with positions
    (steps + 1, 2), grads, buffers, updates (steps, 2), losses (steps + 1,), hyper).
    """
    from matplotlib.patches import FancyArrowPatch

    paths = run["paths"]
    steps = len(paths[0].grads)
    n = len(paths)
    fig = new_figure(4.0 * n, 7.4, dpi)
    gs = fig.add_gridspec(3, n, height_ratios=[1.0, 0.27, 0.42], left=0.05, right=0.98, top=0.84, bottom=0.07,
                          wspace=0.15, hspace=0.12)
    fig.suptitle(f"SGD on {run['formula']}: the same learning rate, with and without momentum",
                 fontsize=style.FONT["title"])
    gx, gy, gz = run["grid"]
    x0, x1, y0, y1 = run["box"]
    levels = np.quantile(gz, np.linspace(0.01, 0.97, 14) ** 2)
    h = paths[0].hyper
    hyper = [f"lr={style.fmt(h['lr'], 4)}"]
    mom = next((p.hyper for p in paths if p.hyper["momentum"]), None)
    if mom:
        hyper.append(f"momentum={style.fmt(mom['momentum'], 3)}")
        if mom["dampening"]:
            hyper.append(f"dampening={style.fmt(mom['dampening'], 3)}")
    if h["weight_decay"]:
        hyper.append(f"weight_decay={style.fmt(h['weight_decay'], 4)}")
    caption = fig.text(0.5, 0.925, "", ha="center", va="center", fontsize=style.FONT["caption"])
    panels, dynamic = [], []
    for c, path in enumerate(paths):
        ax = fig.add_subplot(gs[0, c])
        ax.contour(gx, gy, gz, levels=np.unique(levels), colors="#bbbbbb", linewidths=0.6, zorder=0)
        ax.plot(*run["minimum"], marker="*", color="#444444", ms=10, zorder=1)
        color = style.SERIES[path.variant]
        P = path.positions
        ax.plot(P[:, 0], P[:, 1], color=color, alpha=0.15, lw=1, zorder=1)
        (trail,) = ax.plot([], [], color=color, lw=1.5, marker="o", ms=3, zorder=2)
        (head,) = ax.plot([], [], "o", color=color, ms=8, mec="black", zorder=5)
        arrows = {}
        for key, lw in (("update", 2.6), ("gradient", 1.6), ("buffer", 1.6)):
            if key == "buffer" and not path.hyper["momentum"]:
                continue
            a = FancyArrowPatch((0, 0), (0, 0), arrowstyle="-|>", mutation_scale=12, lw=lw,
                                color=style.SERIES[key], zorder=4 if key != "update" else 3,
                                shrinkA=0, shrinkB=0, linestyle="-" if key == "update" else (0, (3, 2)))
            ax.add_patch(a)
            arrows[key] = a
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("auto")
        ax.tick_params(labelsize=7)
        name = TITLES[path.variant]
        ax.set_title(name, fontsize=style.FONT["label"] + 1, color=color, pad=3)
        n_ax = fig.add_subplot(gs[1, c])
        n_ax.axis("off")
        numbers = n_ax.text(0.0, 0.45, "", transform=n_ax.transAxes, fontsize=8, family="monospace", va="center",
                            ha="left")
        panels.append(dict(path=path, trail=trail, head=head, arrows=arrows, numbers=numbers, ax=ax,
                           overflow=_overflow_step(path)))
        dynamic += [trail, head, *arrows.values(), numbers]
    # a shared legend for the arrows
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=style.SERIES["gradient"], lw=1.6, ls=(0, (3, 2)), label="−lr·g  (gradient)"),
               Line2D([], [], color=style.SERIES["buffer"], lw=1.6, ls=(0, (3, 2)),
                      label="−lr·b  (momentum buffer)"),
               Line2D([], [], color=style.SERIES["update"], lw=2.6, label="update $p_{k+1} - p_k$")]
    fig.legend(handles=handles, loc="center", bbox_to_anchor=(0.5, 0.883), ncol=3, fontsize=8.5, frameon=False)
    l_ax = fig.add_subplot(gs[2, :])
    ks = np.arange(steps + 1)
    markers = []
    for path in paths:
        L = np.where(np.isfinite(path.losses), path.losses, np.nan)
        l_ax.plot(ks, L, color=style.SERIES[path.variant], lw=1.5, label=TITLES[path.variant])
        (m,) = l_ax.plot([], [], "o", color=style.SERIES[path.variant], ms=6, mec="black", zorder=5)
        markers.append(m)
    finite = np.concatenate([p.losses[np.isfinite(p.losses)] for p in paths])
    if finite.size and finite.min() > 0:
        l_ax.set_yscale("log")
        l_ax.set_ylim(max(finite.min() * 0.5, 1e-12), min(finite.max() * 2, 1e12))
    l_ax.set_xlim(-0.5, steps + 0.5)
    l_ax.set_xlabel("k: the loss f(p$_k$) before step k (dots: this frame's k)", fontsize=style.FONT["label"],
                    labelpad=1)
    l_ax.set_ylabel("loss", fontsize=style.FONT["label"])
    l_ax.tick_params(labelsize=7)
    from matplotlib.ticker import MaxNLocator

    l_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    l_ax.grid(alpha=0.3)
    l_ax.legend(fontsize=7.5, loc="upper right", ncol=n)
    dynamic += markers + [caption]

    def update(k):
        for pan, m in zip(panels, markers):
            path = pan["path"]
            p, g, b, d = path.positions[k], path.grads[k], path.buffers[k], path.updates[k]
            lr = path.hyper["lr"]
            pan["trail"].set_data(path.positions[:k + 1, 0], path.positions[:k + 1, 1])
            pan["head"].set_data([p[0]], [p[1]])
            ends = {"gradient": p - lr * g, "buffer": p - lr * b, "update": p + d}
            for key, a in pan["arrows"].items():
                a.set_positions(tuple(p), tuple(_clip(p, ends[key], run["box"])))
            pan["numbers"].set_text(_numbers(path, k, pan["overflow"], run["box"]))
            m.set_data([k], [path.losses[k] if np.isfinite(path.losses[k]) else np.nan])
        caption.set_text(f"step {k} (of 0 … {steps - 1}): from p$_{{{k}}}$ to p$_{{{k + 1}}}$   ({', '.join(hyper)})")
        return dynamic

    return Animation(fig, update, steps, name="sgd", title="SGD with and without momentum",
                     artists={"panels": panels, "caption": caption}, record=run, dynamic=dynamic)


def sgd_trace(trace, name, *, dpi: int = 100) -> Animation:
    """One frame per recorded step: parameter ``name``'s gradient, momentum buffer (after the step) and update
    as heatmaps (flattened to 2-D), and their norms over the steps."""
    steps = list(trace.steps)
    if not steps:
        raise ValueError(f"{trace.path!r} holds no recorded steps")
    kinds = [("grad", "gradient g"), ("momentum_after", "momentum buffer b"), ("update", "update Δ = p' − p")]
    arrays = {k: trace.param(name, k).astype(np.float64) for k, _ in kinds}
    if np.all(np.isnan(arrays["momentum_after"])):
        kinds = [kinds[0], kinds[2]]
    flat = {k: np.stack([mosaic(a[s]) for s in range(len(a))]) for k, a in arrays.items()}
    width = 4.2 * len(kinds)
    fig = new_figure(width, 6.6, dpi)
    # the left margin in inches, not a fraction: the norms' log-scale labels (2×10⁻¹) need ~0.8 in at any width
    gs = fig.add_gridspec(2, len(kinds), height_ratios=[1.0, 0.55], left=0.85 / width, right=0.97, top=0.77,
                          bottom=0.09, wspace=0.3, hspace=0.38)
    hp = trace.hyperparameters
    opts = ", ".join(f"{k}={v}" for k, v in hp.items() if k in ("lr", "momentum", "dampening", "weight_decay",
                                                                   "nesterov") and v not in (0, 0.0, False))
    fig.suptitle(f"Parameter {name} {tuple(trace.param(name, 'value', steps[:1]).shape[1:])} during training "
                 f"({opts})", fontsize=style.FONT["title"])
    caption = fig.text(0.5, 0.905, "", ha="center", va="center", fontsize=style.FONT["caption"])
    images, heads, limits = [], [], []
    for c, (k, title) in enumerate(kinds):
        ax = fig.add_subplot(gs[0, c])
        d = flat[k]
        im = imshow(ax, d.shape[1:], column_scheme(True))
        ax.set_aspect("equal" if max(d.shape[1:]) <= 4 * min(d.shape[1:]) else "auto")
        heads.append((ax.set_title("", fontsize=style.FONT["label"], linespacing=1.3), title))
        limits.append(frame_limits(d[:, None]))
        images.append(im)
    fig.text(0.5, 1 - 0.95 / 6.6, "blue < 0 < red, white = 0; each map is scaled per step to the range in its "
             "title (kernels tiled, one per output x input channel)", ha="center", va="center", fontsize=8.5,
             color="#444444")
    n_ax = fig.add_subplot(gs[1, :])
    norms, dots = {}, []
    for k, title in kinds:
        a = arrays[k].reshape(len(steps), -1)
        norms[k] = np.sqrt(np.nansum(a * a, axis=1))
        color = {"grad": style.SERIES["gradient"], "momentum_after": style.SERIES["buffer"],
                 "update": style.SERIES["update"]}[k]
        n_ax.plot(steps, norms[k], lw=1.4, color=color, label=f"‖{title.split(' ')[-1] if k != 'update' else 'Δ'}‖")
        dots.append(n_ax.plot([], [], "o", color=color, ms=6, mec="black", zorder=6)[0])
    # the step marker: a grey line with a dot on every curve (orange would read as the buffer's curve)
    mark = n_ax.axvline(steps[0], color="#555555", lw=1.2, zorder=5)
    n_ax.set_yscale("log")
    # the legend sits in a row above the plot, where it can never cover the marker or a curve
    n_ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(kinds), frameon=False,
                borderaxespad=0.2)
    n_ax.set_xlabel("step", fontsize=8, labelpad=1)
    n_ax.set_ylabel("norm", fontsize=8, labelpad=2)
    n_ax.tick_params(labelsize=7)
    n_ax.tick_params(which="minor", labelsize=6)
    n_ax.grid(alpha=0.3)
    dynamic = images + [h for h, _ in heads] + [mark, *dots, caption]

    def update(f):
        for im, (k, _), (head, title), lim in zip(images, kinds, heads, limits):
            im.set_data(flat[k][f])
            im.set_clim(-lim[f], lim[f])
            head.set_text(f"{title}\n{range_text(lim[f], True)}")
        s = steps[f]
        mark.set_xdata([s, s])
        for dot, (k, _) in zip(dots, kinds):
            dot.set_data([s], [norms[k][f]] if norms[k][f] > 0 else [np.nan])
        caption.set_text(f"step {s}: " + ",  ".join(f"‖{t.split(' ')[-1] if k != 'update' else 'Δ'}‖ = "
                                                    f"{norms[k][f]:.3g}" for k, t in kinds))
        return dynamic

    return Animation(fig, update, len(steps), name="sgd-trace", title=f"SGD state of {name}",
                     artists={"images": images, "kinds": [k for k, _ in kinds], "caption": caption,
                              "heads": [h for h, _ in heads], "norms_ax": n_ax, "mark": mark, "dots": dots},
                     record=dict(steps=steps, arrays=arrays, flat=flat, limits=limits), dynamic=dynamic)
