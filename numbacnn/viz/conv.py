"""Convolution drawn window by window (numbacnn.viz.conv) from numbacnn.trace.trace_conv2d: forward, flipped,
multi-channel, and the backward pass (the kernel's gradient as a correlation, the input's gradient as a full
convolution)."""
from __future__ import annotations

import numpy as np

from . import style
from ._window import Equation, Result, Scene, Source, padded, render, span_text, window_cells

MAX_TERMS = 9  # captions spell out every product up to this many


def _arith(a, b, total, pad=None) -> str:
    a, b = np.ravel(a), np.ravel(b)
    if a.size > MAX_TERMS:
        return f"sum of {a.size} products = {style.fmt(total, 3)}"
    par = lambda v: f"({style.fmt(v, 3)})" if v < 0 else style.fmt(v, 3)
    return " + ".join(f"{par(x)}·{par(y)}" for x, y in zip(a, b)) + f" = {style.fmt(total, 3)}"


def _check_single_example(t):
    if t.x.shape[0] != 1:
        raise ValueError(f"the animation shows one example: x must have N=1, got shape {t.x.shape}")
    if t.meta.get("groups", 1) != 1:
        raise ValueError(f"the animation shows groups=1 only, got groups={t.meta.get('groups')}")


def forward_scene(trace, flipped=None) -> Scene:
    """Scene of one conv2d trace; ``flipped``: a second trace of the same call with flip=True shown beside it."""
    t = trace
    _check_single_example(t)
    F = len(t)
    _, C, H, W = t.x.shape
    O, Cg, KH, KW = t.kernel.shape
    pads = tuple(t.meta["padding"])
    pt, _, pl, _ = pads
    n, o, i, j = t.pos.T
    cells = np.stack([window_cells(t.rows[m], t.cols[m], pt, pl) for m in range(F)])
    ticks = (list(range(-pt, H + pads[1])), list(range(-pl, W + pads[3])))
    active = np.ones(F, bool)
    opts = _options_text(t.meta)
    kw_sign = dict(b_scheme=style.signed(t.kernel),
                   p_scheme=style.signed(t.products))
    a_scheme = style.scheme(t.x)
    rows = []
    for c in range(Cg):
        vals, mask = padded(t.x[0, c], pads)
        title = "input x" + (f", channel {c}" if C > 1 else "") + (" (hatched: padding)" if mask.any() else "")
        src = Source(vals, mask, title, cells, active, ticks, a_scheme)
        partial = t.products[:, c].reshape(F, -1).astype(np.float64).sum(axis=1)
        kname = f"kernel K[{'o' if O > 1 else 0}, {c}]" if (C > 1 or O > 1) else "kernel K"
        sums = [f"Σ = {style.fmt(v, 3)}" for v in (partial if (C > 1 or "bias" in t.arrays) else t.result)]
        rows.append(Equation(a=t.window[:, c], b=t.kernel[o, c], p=t.products[:, c], a_pad=t.pad[:, c],
                             titles=("window", kname, "window ⊙ kernel"), op="⊙", sums=sums, active=active,
                             source=src, a_scheme=a_scheme, **kw_sign))
    order = np.full((O, *t.out.shape[2:]), -1)
    order[o, i, j] = np.arange(F)
    results = [Result(t.out[0, oc], order[oc], f"output y" + (f", channel {oc}" if O > 1 else "")
                      + (" (cross-correlation)" if flipped is not None else ""),
                      style.signed(t.out[0])) for oc in range(O)]
    totals = None
    if C > 1 or "bias" in t.arrays:
        totals = []
        for m in range(F):
            parts = [style.fmt(t.products[m, c].astype(np.float64).sum(), 3) for c in range(Cg)]
            bv = t.bias_term[m]
            b = f" + bias {'(' + style.fmt(bv, 3) + ')' if bv < 0 else style.fmt(bv, 3)}" if "bias" in t.arrays else ""
            totals.append(f"y[{o[m]}][{i[m]}, {j[m]}] = {' + '.join(parts)}{b} = {style.fmt(t.result[m], 3)}")
    captions = []
    for m in range(F):
        where = f"y[{i[m]}, {j[m]}]" if O == 1 else f"y[{o[m]}][{i[m]}, {j[m]}]"
        src_txt = f"x {span_text('row', t.rows[m])}, {span_text('col', t.cols[m])}"
        if C == 1 and "bias" not in t.arrays:
            captions.append(f"{where} from {src_txt}:  {_arith(t.window[m], t.kernel[o[m]], t.result[m])}")
        else:
            captions.append(f"{where} from {src_txt}: the window's products in every input channel, summed"
                            + (f" (kernel K[{o[m]}, c])" if O > 1 else ""))
    if flipped is not None:
        f2 = flipped
        if len(f2) != F or f2.kernel.shape != t.kernel.shape or C != 1 or O != 1:
            raise ValueError("flipped must trace the same single-channel call with flip=True")
        rows[0].titles = ("window", "kernel K", "window ⊙ K")
        rows[0].sums = [f"Σ = {style.fmt(v, 3)}" for v in t.result]
        rows.append(Equation(a=f2.window[:, 0], b=f2.kernel[o, 0], p=f2.products[:, 0], a_pad=f2.pad[:, 0],
                             titles=("window", "K flipped ↕↔", "window ⊙ flipped K"), op="⊙",
                             sums=[f"Σ = {style.fmt(v, 3)}" for v in f2.result], active=active, source=None,
                             a_scheme=a_scheme, b_scheme=kw_sign["b_scheme"],
                             p_scheme=style.signed(f2.products, t.products)))
        results.append(Result(f2.out[0, 0], order[0], "output (strict convolution)",
                              style.signed(f2.out[0], t.out[0])))
        results[0].scheme = results[1].scheme
        captions = [f"y[{i[m]}, {j[m]}]: correlation {style.fmt(t.result[m], 3)}, convolution (kernel flipped) "
                    f"{style.fmt(f2.result[m], 3)}" for m in range(F)]
        title = f"Cross-correlation vs. convolution: the same window, the kernel flipped{opts}"
    else:
        title = (f"conv2d, one window at a time{opts}" if C == 1 and O == 1 else
                 f"conv2d with {C} input and {O} output channels{opts}")
    return Scene(title=title, captions=captions, rows=rows, results=results, totals=totals, name="conv")


def _options_text(meta) -> str:
    parts = []
    if tuple(meta["stride"]) != (1, 1):
        parts.append(f"stride {_pair(meta['stride'])}")
    if any(meta["padding"]):
        pt, pb, pl, pr = meta["padding"]
        parts.append(f"padding {_pair((pt, pl))}" if (pt, pl) == (pb, pr) else f"padding {tuple(meta['padding'])}")
    if tuple(meta["dilation"]) != (1, 1):
        parts.append(f"dilation {_pair(meta['dilation'])}")
    return f" ({', '.join(parts)})" if parts else ""


def _pair(p):
    a, b = p
    return str(a) if a == b else f"({a}, {b})"


def grad_out_footer(grad_out, source=None) -> str:
    """What grad_out is, for the backward animation's footer; ``source`` says how this one was made."""
    g = np.asarray(grad_out, np.float64)
    if source is None and g.size and np.all(g == np.round(g)):
        source = f"an example, integers from {style.fmt(g.min())} to {style.fmt(g.max())} so the sums read easily"
    return ("grad_out = ∂L/∂y, the loss's gradient with respect to the output y (in a network, the next layer's "
            "backward pass hands it down)" + (f". Here: {source}." if source else "."))


def backward_scene(trace, grad_out_source=None) -> Scene:
    """Scene of a conv2d_backward trace: first every grad_weight element, then every grad_x element.

    ``grad_out_source``: how the trace's grad_out was made, for the footer (default: described from its values).
    """
    t = trace
    _check_single_example(t)
    _, C, H, W = t.x.shape
    O, Cg, KH, KW = t.kernel.shape
    if C != 1 or O != 1:
        raise ValueError(f"the backward animation shows one input and one output channel, got C={C}, O={O}")
    HO, WO = t.grad_out.shape[2:]
    (sh, sw), (dh, dw) = t.meta["stride"], t.meta["dilation"]
    pads = tuple(t.meta["padding"])
    pt, pb, pl, pr = pads
    Mw, Mx = len(t.gw_pos), len(t.gx_pos)
    F = Mw + Mx
    on_w = np.arange(F) < Mw
    on_x = ~on_w
    # phase 1: grad_weight[p, q] = sum_ij grad_out[i, j] * x[rows_i, cols_j] (a correlation of x with grad_out)
    vals, mask = padded(t.x[0, 0], pads)
    cells_w = np.zeros((F, HO * WO, 2), int)
    for m in range(Mw):
        cells_w[m] = window_cells(t.gw_rows[m], t.gw_cols[m], pt, pl)
    src_w = Source(vals, mask, "input x" + (" (hatched: padding)" if mask.any() else ""), cells_w, on_w,
                   (list(range(-pt, H + pb)), list(range(-pl, W + pr))))
    pad_f = lambda a, n: np.concatenate([a, np.repeat(a[-1:] * 0, n, axis=0)])
    gw_a = pad_f(t.gw_x[:, 0], Mx)
    gw_b = pad_f(t.gw_grad_out[:, 0], Mx)
    gw_p = pad_f(t.gw_products[:, 0], Mx)
    gw_pad = pad_f(t.gw_pad[:, 0], Mx)
    row_w = Equation(a=gw_a, b=gw_b, p=gw_p, a_pad=gw_pad, titles=("x under the taps", "grad_out", "products"),
                     op="⊙", sums=[f"Σ = {style.fmt(v, 3)}" for v in t.gw_result] + [""] * Mx, active=on_w,
                     source=src_w, a_scheme=style.scheme(t.x),
                     b_scheme=style.signed(t.grad_out),
                     p_scheme=style.signed(t.gw_products))
    # phase 2: grad_x[h, w] = full convolution of the (stride-spread) grad_out with the kernel
    r0 = min(0, pt - (KH - 1) * dh)
    c0 = min(0, pl - (KW - 1) * dw)
    r1 = max((HO - 1) * sh, H - 1 + pt)
    c1 = max((WO - 1) * sw, W - 1 + pl)
    spread = np.zeros((r1 - r0 + 1, c1 - c0 + 1))
    spad = np.ones(spread.shape, bool)
    ii, jj = np.meshgrid(np.arange(HO) * sh - r0, np.arange(WO) * sw - c0, indexing="ij")
    spread[ii, jj] = t.grad_out[0, 0]
    spad[ii, jj] = False
    cells_x = np.zeros((F, KH * KW, 2), int)
    for m in range(Mx):
        _, _, h, w = t.gx_pos[m]
        rr = (h + pt - np.arange(KH)[::-1] * dh) - r0  # spatial order: the last kernel row sits on top
        cc = (w + pl - np.arange(KW)[::-1] * dw) - c0
        cells_x[Mw + m] = window_cells(rr, cc, 0, 0)
    src_x = Source(spread, spad, "grad_out, spread by the stride and padded" if (sh, sw) != (1, 1)
                   else "grad_out, padded for a full convolution", cells_x, on_x,
                   (list(range(r0, r1 + 1)), list(range(c0, c1 + 1))))
    rev = lambda a: a[:, 0, ::-1, ::-1]  # tap order (p, q) -> spatial order under the window
    gx_a = np.concatenate([np.zeros((Mw, KH, KW)), rev(t.gx_grad_out)])
    gx_b = np.concatenate([np.zeros((Mw, KH, KW)), rev(t.gx_kernel)])
    gx_p = np.concatenate([np.zeros((Mw, KH, KW)), rev(t.gx_products)])
    gx_pad = np.concatenate([np.zeros((Mw, KH, KW), bool), rev(t.gx_pad)])
    row_x = Equation(a=gx_a, b=gx_b, p=gx_p, a_pad=gx_pad, titles=("grad_out window", "kernel, flipped", "products"),
                     op="⊙", sums=[""] * Mw + [f"Σ = {style.fmt(v, 3)}" for v in t.gx_result], active=on_x,
                     source=src_x, a_scheme=style.signed(t.grad_out),
                     b_scheme=style.signed(t.kernel),
                     p_scheme=style.signed(t.gx_products))
    order_w = np.full((KH, KW), -1)
    order_w[t.gw_pos[:, 2], t.gw_pos[:, 3]] = np.arange(Mw)
    order_x = np.full((H, W), -1)
    order_x[t.gx_pos[:, 2], t.gx_pos[:, 3]] = Mw + np.arange(Mx)
    results = [Result(t.grad_weight[0, 0], order_w, "grad_weight = x ⋆ grad_out",
                      style.signed(t.grad_weight)),
               Result(t.grad_x[0, 0], order_x, "grad_x = full conv(grad_out, K)",
                      style.signed(t.grad_x))]
    captions = []
    for m in range(Mw):
        _, _, p, q = t.gw_pos[m]
        captions.append(f"grad_weight[{p}, {q}]: every output's gradient times the input the tap ({p}, {q}) read: "
                        f"sum = {style.fmt(t.gw_result[m], 3)}")
    for m in range(Mx):
        _, _, h, w = t.gx_pos[m]
        captions.append(f"grad_x[{h}, {w}]: {_arith(rev(t.gx_grad_out)[m], rev(t.gx_kernel)[m], t.gx_result[m])}")
    return Scene(title=f"conv2d backward: the kernel's gradient, then the input's gradient{_options_text(t.meta)}",
                 captions=captions, rows=[row_w, row_x], results=results, name="conv-backward", width=14.0,
                 ratios=(1.0, 2.0, 0.9), row_height=2.8, footer=grad_out_footer(t.grad_out, grad_out_source))


def conv(trace, *, flipped=None, grad_out_source: str | None = None, dpi: int = 100):
    """Animate a conv2d op trace: one frame per window (forward) or per gradient element (backward).

    ``trace``: numbacnn.trace.trace_conv2d(...) of one example (N=1, groups=1); ``flipped``: the same call
    traced with flip=True, drawn beside it (cross-correlation vs. strict convolution). ``grad_out_source``
    (backward): how grad_out was made, e.g. "seeded random integers from -1 to 2", shown in the footer.
    """
    if trace.op == "conv2d_backward":
        scene = backward_scene(trace, grad_out_source)
    elif trace.op == "conv2d":
        scene = forward_scene(trace, flipped)
    else:
        raise ValueError(f"trace must come from trace_conv2d, got op={trace.op!r}")
    return render(scene, record=trace, dpi=dpi)
