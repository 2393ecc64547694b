"""Feature maps across training (numbacnn.viz.features): one example through every layer of a model trace
(numbacnn.trace.load(path) -> Trace), step after step."""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure
from ._maps import as_2d, column_scheme, frame_limits, imshow, range_text


class ExampleNotTraced(ValueError):
    """``example`` is past the examples the trace holds (the CLI names its --example option)."""


def _scalars_at(trace, steps):
    sc = trace.scalars()
    loss = {int(s): l for s, l in zip(sc["step"], sc["loss"])}
    acc = {int(s): a for s, a in zip(sc["step"], sc["acc"])}
    return sc, [loss.get(int(s), np.nan) for s in steps], [acc.get(int(s), np.nan) for s in steps]


def softmax(logits) -> np.ndarray:
    """Probabilities from logits (last axis), computed stably in float64."""
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _classes(classes, k):
    if classes is None:
        from numbacnn.data import CLASSES

        return list(CLASSES) if k == len(CLASSES) else [f"class {c}" for c in range(k)]
    classes = [str(c) for c in classes]
    if len(classes) != k:
        raise ValueError(f"classes names {len(classes)} classes, but the last layer has {k} outputs")
    return classes


def _label(trace, labels, source, example, k):
    """The true class of the example shown, or None when neither ``labels`` nor the trace has it."""
    if labels is None and source == "probe":
        labels = trace.hyperparameters.get("probe_labels")
    if labels is None:
        return None
    if example >= len(labels):
        raise ValueError(f"labels holds {len(labels)} labels: none for example {example}")
    label = int(labels[example])
    if not 0 <= label < k:
        raise ValueError(f"label {label} of example {example} is not a class 0..{k - 1}")
    return label


def features(trace, *, example: int = 0, max_channels: int = 6, layers=None, source: str | None = None,
             classes=None, labels=None, dpi: int = 100) -> Animation:
    """One frame per recorded step: example ``example``'s input and every layer's output (up to
    ``max_channels`` channels each, one row per channel; vectors as blocks), the loss (when logged with
    ``Tracer.log``; no loss panel otherwise) and, when the last layer gives 2 to 20 logits, what the network
    predicts: the softmax of the recorded logits per class.

    ``classes``: the class names (default: Fashion-MNIST's ten for 10 logits, else "class k"); ``labels``:
    the true labels of the examples (default: the trace's ``probe_labels`` hyperparameter for the probe;
    batch labels are not recorded).

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
        raise ExampleNotTraced(f"example {example} was not traced: the trace holds {first.shape[0]} "
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
    last = [np.asarray(read(names[-1], s, "y")[example], np.float64) for s in steps]
    probs = softmax(np.stack(last)) if last[0].ndim == 1 and 2 <= last[0].size <= 20 else None
    names_k = _classes(classes, probs.shape[1]) if probs is not None else None
    label = _label(trace, labels, source, example, probs.shape[1]) if probs is not None else None
    sc, loss_at, acc_at = _scalars_at(trace, steps)
    has_loss = bool(np.isfinite(np.asarray(sc["loss"], np.float64)).any())
    nrow = max(d.shape[1] for d in data)
    cell = 1.05  # inches per map
    fig_w = max(9.0, 0.35 + cell * 1.12 * len(cols))
    maps_h = cell * nrow
    low_h = (2.1 if probs is not None else 1.25) if (has_loss or probs is not None) else 0.0  # bottom row
    fig_h = 1.35 + maps_h + (0.35 + low_h + 0.45 if low_h else 0.3)
    fig = new_figure(fig_w, fig_h, dpi)
    top_y = 1 - 1.35 / fig_h
    kw = dict(left=0.2 / fig_w, right=1 - 0.15 / fig_w, top=top_y)
    if low_h:
        gs = fig.add_gridspec(2, 1, height_ratios=[maps_h, low_h], bottom=0.45 / fig_h,
                              hspace=0.45 / (maps_h + low_h) * 2.4, **kw)
    else:
        gs = fig.add_gridspec(1, 1, bottom=0.3 / fig_h, **kw)
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
    dynamic = [im for col in images for im in col] + [h for h, _ in heads] + [caption]
    mark = pred = None
    if low_h:
        box = gs[1].get_position(fig)
        split = 0.62 if probs is not None else 1 - 0.2 / fig_w
    if has_loss:  # the loss curve, with room on the left for its axis labels
        l_ax = fig.add_axes((0.8 / fig_w, box.y0, split - 0.8 / fig_w, box.height))
        l_ax.plot(sc["step"], sc["loss"], color=style.SERIES["sgd"], lw=1.2)
        (mark,) = l_ax.plot([], [], "o", color=style.WINDOW, ms=8, zorder=5)
        l_ax.set_xlabel("step", fontsize=9, labelpad=1)
        l_ax.set_ylabel("training loss", fontsize=9)
        l_ax.tick_params(labelsize=8)
        l_ax.grid(alpha=0.3)
        dynamic.append(mark)
    if probs is not None:
        x0 = (split + 1.3 / fig_w) if has_loss else 1.5 / fig_w
        pred = _Prediction(fig, (x0, box.y0, min(4.0 / fig_w, 1 - 0.55 / fig_w - x0), box.height * 0.86),
                           names_k, label)
        dynamic += pred.dynamic()

    def update(f):
        for col, d, signed, lim, (head, text) in zip(images, data, signs, limits, heads):
            m = lim[f]
            for r, im in enumerate(col):
                im.set_data(d[f, r])
                im.set_clim(-m if signed else 0.0, m)
            head.set_text(f"{text}\n{range_text(m, signed)}")
        s = steps[f]
        if mark is not None and np.isfinite(loss_at[f]):
            mark.set_data([s], [loss_at[f]])
        parts = [f"loss {loss_at[f]:.4f}" if np.isfinite(loss_at[f]) else
                 ("" if has_loss else "loss not logged (Tracer.log records it)")]
        parts += [f"batch accuracy {acc_at[f]:.0%}"] if np.isfinite(acc_at[f]) else []
        parts += [pred.set(probs[f])] if pred is not None else []
        parts = [p for p in parts if p]
        caption.set_text(f"step {s} (recorded step {f + 1} of {len(steps)})" + (": " if parts else "")
                         + ", ".join(parts))
        return dynamic

    return Animation(fig, update, len(steps), name="features", title="Feature maps across training",
                     artists={"images": images, "columns": [c[0] for c in cols], "caption": caption,
                              "heads": [h for h, _ in heads], "loss_mark": mark, "prediction": pred},
                     record=dict(steps=steps, data=data, limits=limits, signed=signs, source=source, probs=probs,
                                 classes=names_k, label=label),
                     dynamic=dynamic)


class _Prediction:
    """Bars of the predicted probability per class (softmax of the recorded logits), the true class marked."""

    def __init__(self, fig, rect, classes, label):
        self.ax = ax = fig.add_axes(rect)
        self.classes, self.label = classes, label
        k = len(classes)
        self.bars = ax.barh(range(k), np.zeros(k), height=0.7, color="#9a9a9a")
        self.texts = [ax.text(0.01, c, "", va="center", ha="left", fontsize=7.5) for c in range(k)]
        ax.set_xlim(0, 1.18)
        ax.set_ylim(k - 0.5, -0.5)
        ax.set_yticks(range(k), classes, fontsize=8)
        ax.set_xticks([0, 0.5, 1], ["0", "50%", "100%"], fontsize=7.5)
        ax.tick_params(length=0, pad=2)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if label is not None:
            tick = ax.get_yticklabels()[label]
            tick.set_color(style.CHOSEN)
            tick.set_fontweight("bold")
        ax.set_title("prediction: softmax of the last layer's logits", fontsize=style.FONT["label"], pad=4,
                     loc="left")
        ax.set_xlabel("true class: green" if label is not None else "(the true label is not in the trace)",
                      fontsize=7.5, labelpad=1)

    def set(self, p) -> str:
        """Show probabilities ``p``; returns the prediction as a short text for the caption."""
        top = int(np.argmax(p))
        for c, (bar, t) in enumerate(zip(self.bars, self.texts)):
            bar.set_width(p[c])
            bar.set_color(style.WINDOW if c == top else ("#7fbf9f" if c == self.label else "#9a9a9a"))
            t.set_x(p[c] + 0.01)
            t.set_text(f"{p[c]:.0%}")
        said = f"predicts {self.classes[top]} ({p[top]:.0%})"
        if self.label is None:
            truth = "true label not in the trace"
        else:
            truth = f"true: {self.classes[self.label]}" + (" ✓" if top == self.label else " ✗")
        return f"{said}, {truth}"

    def dynamic(self) -> list:
        return list(self.bars) + self.texts
