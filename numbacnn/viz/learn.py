"""Learning a kernel drawn (numbacnn.viz.learn, D2L 6.2.4): the kernel, the prediction vs. the target, the loss."""
from __future__ import annotations

import numpy as np

from . import style
from ._anim import Animation, new_figure
from ._grid import Grid


def learn_kernel(record, *, dpi: int = 100) -> Animation:
    """One frame per iteration k: kernel w_k, prediction X * w_k beside the target, loss_k on the curve,
    the gradient and the update w_{k+1} = w_k - lr * grad.

    ``record``: anything with X (H, W), Y (HO, WO), kernels (steps + 1, KH, KW), predictions (steps, HO, WO),
    losses (steps,), grads (steps, KH, KW), lr (see numbacnn.scenarios.learn_kernel).
    """
    X, Y = np.asarray(record.X), np.asarray(record.Y)
    kernels, preds = np.asarray(record.kernels), np.asarray(record.predictions)
    losses, grads = np.asarray(record.losses), np.asarray(record.grads)
    steps = len(losses)
    fig = new_figure(10, 5.8, dpi)
    gs = fig.add_gridspec(2, 3, height_ratios=[1.0, 0.9], left=0.03, right=0.98, top=0.85, bottom=0.09,
                          wspace=0.12, hspace=0.35)
    fig.suptitle("Learning a kernel: gradient descent finds [1, −1] from an image and its edges (D2L 6.2.4)",
                 fontsize=style.FONT["title"])
    x_grid = Grid(fig.add_subplot(gs[0, 0]), X.shape, **style.scheme(X), title="input X").set(X)
    vmin, vmax = style.signed_limits(Y, preds)
    y_grid = Grid(fig.add_subplot(gs[0, 1]), Y.shape, cmap=style.SIGNED_CMAP, vmin=vmin, vmax=vmax,
                  title="target Y = X ⋆ [1, −1]").set(Y)
    p_grid = Grid(fig.add_subplot(gs[0, 2]), Y.shape, cmap=style.SIGNED_CMAP, vmin=vmin, vmax=vmax,
                  title="prediction Ŷ = X ⋆ w")
    kv = style.signed_limits(kernels)
    k_spec = gs[1, 0].subgridspec(2, 1, height_ratios=[1, 1.1], hspace=0.05)
    k_ax = fig.add_subplot(k_spec[0])
    k_grid = Grid(k_ax, kernels.shape[1:], cmap=style.SIGNED_CMAP, vmin=kv[0], vmax=kv[1], fontsize=12,
                  digits=3, title="kernel w")
    t_ax = fig.add_subplot(k_spec[1])
    t_ax.axis("off")
    step_text = t_ax.text(0.5, 0.85, "", transform=t_ax.transAxes, ha="center", va="top",
                          fontsize=style.FONT["label"], linespacing=1.6)
    l_ax = fig.add_subplot(gs[1, 1:])
    it = np.arange(1, steps + 1)
    l_ax.plot(it, losses, color="#888888", lw=1, marker="o", ms=3)
    (done,) = l_ax.plot([], [], color=style.SERIES["sgd"], lw=2, marker="o", ms=4)
    (now,) = l_ax.plot([], [], "o", color=style.WINDOW, ms=9, zorder=5)
    if losses.min() > 0:
        l_ax.set_yscale("log")
    l_ax.set_xlim(0.5, steps + 0.5)
    l_ax.set_xlabel("iteration", fontsize=style.FONT["label"])
    l_ax.set_title("loss = Σ (Ŷ − Y)²", fontsize=style.FONT["label"], pad=3)
    l_ax.tick_params(labelsize=8)
    l_ax.grid(alpha=0.3)
    caption = fig.text(0.5, 0.915, "", ha="center", va="center", fontsize=style.FONT["caption"])
    lr = float(record.lr)

    def update(k):
        w, g, w_next = kernels[k], grads[k], kernels[k + 1]
        k_grid.set(w)
        p_grid.set(preds[k])
        done.set_data(it[:k + 1], losses[:k + 1])
        now.set_data([it[k]], [losses[k]])
        step_text.set_text(f"gradient ∂loss/∂w = {_vec(g)}\n"
                           f"new w = w − {style.fmt(lr, 3)} · ∂loss/∂w\n= {_vec(w_next)}")
        caption.set_text(f"iteration {k + 1} of {steps}:  w = {_vec(w)},  loss = {losses[k]:.4g}")
        return dynamic

    dynamic = k_grid.dynamic() + p_grid.dynamic() + [done, now, step_text, caption]
    return Animation(fig, update, steps, name="learn-kernel", title="Learning a kernel",
                     artists={"input": x_grid, "target": y_grid, "prediction": p_grid, "kernel": k_grid,
                              "step": step_text, "caption": caption, "loss_point": now},
                     record=record, dynamic=dynamic)


def _vec(a) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in np.ravel(a)) + "]"
