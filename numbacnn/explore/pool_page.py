"""`explore pool` (numbacnn.explore.pool_page): max, avg and min pooling under every window, stride, padding,
ceil_mode and count_include_pad, for every preset input, computed by numbacnn's pooling kernels through
numbacnn.trace.trace_pool2d (windows, the kernel's chosen indices, avg's divisors) and the *_pool2d_backward
kernels (the gradient routed back; grad_out is the seeded example of numbacnn.explore.conv_page.example_grad).
"""
from __future__ import annotations

import numpy as np

from .conv_page import example_grad
from .page import build, f32, ints

MODES = ("max", "avg", "min")
WINDOWS = (2, 3)
STRIDES = (1, 2, 3)
PADDINGS = (0, 1)
INPUTS = ("digits", "d2l-edge", "checker", "digit")
D2L = ("6.5 Pooling", "chapter_convolutional-neural-networks/pooling.html")


def digits(h=6, w=6) -> np.ndarray:
    """The 'digits' input of `animate pool`: the numbers 0-9 in an (h, w) grid (k * 7 mod 10)."""
    return np.arange(h * w, dtype=np.float32).reshape(h, w) * 7 % 10


def _combo(x, mode, k, s, p, ceil, cip):
    import numbacnn as nc

    from ..trace import trace_pool2d

    try:
        t = trace_pool2d(x, mode, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip))
    except ValueError as exc:
        return str(exc)
    HO, WO = t.out.shape[2:]
    H, W = x.shape[2:]
    gy = example_grad((1, 1, HO, WO))
    if mode == "avg":
        gx = nc.avg_pool2d_backward(gy, x, k, s, p, bool(ceil), bool(cip))
    else:
        gx = getattr(nc, f"{mode}_pool2d_backward")(gy, x, k, s, p, 1, bool(ceil))
    rec = {"ho": HO, "wo": WO, "rows": ints(t.rows[::WO][:HO]), "cols": ints(t.cols[:WO]),
           "r1": int(max(t.rows.max(), H - 1 + p)), "c1": int(max(t.cols.max(), W - 1 + p)),
           "out": f32(t.result), "gy": f32(gy), "gx": f32(gx)}
    if mode == "avg":
        rec["div"] = ints(t.divisor)
    else:
        rec["chosen"] = ints(t.chosen)
    return rec


def pool_data(inputs: dict, start: dict) -> dict:
    """Every array the pool page shows; ``inputs``: name -> X (H, W)."""
    data = {"inputs": {}, "xs": {}, "combos": {}, "modes": MODES, "windows": WINDOWS, "strides": STRIDES,
            "pads": PADDINGS, "start": start}
    for name, X in inputs.items():
        data["inputs"][name] = {"h": X.shape[0], "w": X.shape[1]}
        data["xs"][name] = f32(X)
        x = X[None, None].astype(np.float32)
        for mode in MODES:
            for k in WINDOWS:
                for s in STRIDES:
                    for p in PADDINGS:
                        for ceil in (0, 1):
                            for cip in ((0, 1) if mode == "avg" else (0,)):
                                key = f"{name}|{mode}|{k}|{s}|{p}|{ceil}|{cip}"
                                data["combos"][key] = _combo(x, mode, k, s, p, ceil, cip)
    return data


def page(input="digits", mode="max", *, extra_inputs=None, window=2, stride=2, padding=0, ceil_mode=False,
         count_include_pad=True, backward=False):
    """The pool explorer (a numbacnn.explore.page.Page); the keywords set the controls' starting values."""
    from .. import scenarios

    inputs = {"digits": digits()}
    inputs.update({n: scenarios.preset_input(n) for n in INPUTS[1:]})
    inputs.update({k: np.asarray(v, np.float32) for k, v in (extra_inputs or {}).items()})
    for name, value, allowed in (("input", input, inputs), ("mode", mode, MODES), ("window", window, WINDOWS),
                                 ("stride", stride, STRIDES), ("padding", padding, PADDINGS)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    start = dict(input=input, mode=mode, k=window, s=stride, p=padding, ceil=int(bool(ceil_mode)),
                 cip=int(bool(count_include_pad)), pass_="backward" if backward else "forward")
    data = pool_data(inputs, start)
    intro = ("Pooling slides a window over the input and keeps one number per window: the largest (<b>max</b>), "
             "the smallest (<b>min</b>) or the mean (<b>avg</b>). Padding cells never win max/min pooling (they "
             "hold −∞ / +∞); avg pooling counts them in the divisor only with <i>count_include_pad</i>. "
             "<i>ceil_mode</i> keeps a last, partial window. The <i>backward</i> pass routes each output gradient "
             "to the element max/min picked, or spreads it evenly (÷ divisor) over avg's window. "
             f'<a href="https://d2l.ai/{D2L[1]}">D2L {D2L[0]}</a>')
    return build("pool", "numbacnn explore pool: max, avg and min pooling", intro, data)
