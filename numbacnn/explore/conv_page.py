"""`explore conv` (numbacnn.explore.conv_page): every combination of padding, stride, dilation, flip, channels/groups
and pass, for every preset input and kernel, computed by numbacnn.conv2d / conv2d_backward; the window maps (which
input cells a window reads, which output gradients reach an input cell) from numbacnn.trace.trace_conv2d.

Shapes: x (1, C, H, W) with channel c = X + c; weight (O, C // groups, KH, KW) with weight[o, c] = K + c + o (the
convention of ``numbacnn animate conv --channels``); the backward pass's grad_out is the animation's example
(seeded integers -1..2, numbacnn.commands.animate._example_grad's recipe) of shape (1, O, HO, WO).
"""
from __future__ import annotations

import numpy as np

from .page import build, f32, ints

PADDINGS = (0, 1, 2)
STRIDES = (1, 2, 3)
DILATIONS = (1, 2)
# label -> (C input channels, O output channels, groups)
CHANNELS = {"1 → 1": (1, 1, 1), "2 → 1": (2, 1, 1), "2 → 2": (2, 2, 1), "2 → 2, groups 2 (depthwise)": (2, 2, 2)}
INPUTS = ("d2l-edge", "checker", "digit")

D2L_LINKS = [("6.2 Convolutions for images", "chapter_convolutional-neural-networks/conv-layer.html"),
             ("6.3 Padding and stride", "chapter_convolutional-neural-networks/padding-and-strides.html"),
             ("6.4 Multiple input and output channels", "chapter_convolutional-neural-networks/channels.html")]


def example_grad(shape) -> np.ndarray:
    """The backward pass's example output gradient (small seeded integers -1..2, as `animate conv --backward`)."""
    return np.random.default_rng(0).integers(-1, 3, size=tuple(shape)).astype(np.float32)


def make_x(X, C) -> np.ndarray:
    return np.stack([X + c for c in range(C)])[None].astype(np.float32)


def make_w(K, C, O, G) -> np.ndarray:
    return np.stack([np.stack([K + c + o for c in range(C // G)]) for o in range(O)]).astype(np.float32)


def _geometry(H, W, KH, KW, p, s, d, flip):
    """The window maps of one geometry, from a traced one-channel call: rows[i][p], cols[j][q] (input row/col read
    by kernel row p of output row i), gwr[p][i], gwc[q][j] (the same for grad_weight's tap p), gxr[h][p], gxc[w][q]
    (the output row whose window puts kernel row p on input row h, -1 where none)."""
    from ..trace import trace_conv2d

    x = np.zeros((1, 1, H, W), np.float32)
    w = np.zeros((1, 1, KH, KW), np.float32)
    try:
        t = trace_conv2d(x, w, stride=s, padding=p, dilation=d, flip=flip)
    except ValueError as exc:
        return {"err": str(exc)}
    HO, WO = t.out.shape[2:]
    b = trace_conv2d(x, w, stride=s, padding=p, dilation=d, flip=flip, backward=True)
    return {"ho": HO, "wo": WO, "rows": ints(t.rows[::WO][:HO]), "cols": ints(t.cols[:WO]),
            "gwr": ints(b.gw_rows[::KW][:KH]), "gwc": ints(b.gw_cols[:KW]), "gxr": ints(b.gx_rows[::W][:H]),
            "gxc": ints(b.gx_cols[:W])}


def _channel_maps(C, O, G):
    """inch[o]: the input channels output channel o reads; outch[c]: the output channels input channel c feeds,
    cl[c]: c's index inside its group's kernel (from a traced call)."""
    from ..trace import trace_conv2d

    x = np.zeros((1, C, 3, 3), np.float32)
    w = np.zeros((O, C // G, 1, 1), np.float32)
    t = trace_conv2d(x, w, groups=G)
    b = trace_conv2d(x, w, groups=G, backward=True)
    inch = [t.channels[o * 9].tolist() for o in range(O)]
    outch = [b.gx_out_channels[c * 9].tolist() for c in range(C)]
    cl = [int(np.flatnonzero(np.array(inch[outch[c][0]]) == c)[0]) for c in range(C)]
    return {"C": C, "O": O, "G": G, "Cg": C // G, "Og": O // G, "inch": inch, "outch": outch, "cl": cl}


def conv_data(inputs: dict, kernels: dict, start: dict) -> dict:
    """Every array the conv page shows. ``inputs``: name -> X (H, W); ``kernels``: name -> K (KH, KW)."""
    import numbacnn as nc

    data = {"inputs": {}, "kernels": {}, "chans": {}, "xs": {}, "ws": {}, "geos": {}, "gys": {}, "fw": {}, "bw": {},
            "pads": PADDINGS, "strides": STRIDES, "dils": DILATIONS, "start": start, "links": D2L_LINKS}
    for label, (C, O, G) in CHANNELS.items():
        data["chans"][label] = _channel_maps(C, O, G)
    for iname, X in inputs.items():
        data["inputs"][iname] = {"h": X.shape[0], "w": X.shape[1]}
        for label, (C, O, G) in CHANNELS.items():
            data["xs"][f"{iname}|{label}"] = f32(make_x(X, C))
    for kname, K in kernels.items():
        data["kernels"][kname] = {"kh": K.shape[0], "kw": K.shape[1]}
        for label, (C, O, G) in CHANNELS.items():
            w = make_w(K, C, O, G)
            data["ws"][f"{kname}|{label}|0"] = f32(w)
            data["ws"][f"{kname}|{label}|1"] = f32(w[:, :, ::-1, ::-1])
    for iname, X in inputs.items():
        H, W = X.shape
        for kname, K in kernels.items():
            KH, KW = K.shape
            for p in PADDINGS:
                for s in STRIDES:
                    for d in DILATIONS:
                        for flip in (0, 1):
                            gkey = f"{H},{W},{KH},{KW},{p},{s},{d},{flip}"
                            if gkey not in data["geos"]:
                                data["geos"][gkey] = _geometry(H, W, KH, KW, p, s, d, bool(flip))
                            geo = data["geos"][gkey]
                            for label, (C, O, G) in CHANNELS.items():
                                key = f"{iname}|{kname}|{p}|{s}|{d}|{flip}|{label}"
                                if "err" in geo:
                                    data["fw"][key] = data["bw"][key] = geo["err"]
                                    continue
                                x, w = make_x(X, C), make_w(K, C, O, G)
                                common = dict(stride=s, padding=p, dilation=d, groups=G, flip=bool(flip))
                                data["fw"][key] = f32(nc.conv2d(x, w, **common))
                                gshape = (1, O, geo["ho"], geo["wo"])
                                gy = example_grad(gshape)
                                data["gys"].setdefault(",".join(map(str, gshape[1:])), f32(gy))
                                gx, gw, _ = nc.conv2d_backward(gy, x, w, **common)
                                data["bw"][key] = [f32(gx), f32(gw)]
    return data


def page(input="d2l-edge", kernel="edge", *, extra_inputs=None, extra_kernels=None, padding=0, stride=1,
         dilation=1, flip=False, channels="1 → 1", backward=False):
    """The conv explorer (a numbacnn.explore.page.Page). ``extra_inputs`` / ``extra_kernels``: name -> array
    added to the presets (e.g. an --input image, a --kernel typed as numbers); ``input`` / ``kernel`` name the
    one shown first; the other keywords set the controls' starting values (each must be on the grid)."""
    from .. import scenarios

    inputs = {n: scenarios.preset_input(n) for n in INPUTS}
    inputs.update({k: np.asarray(v, np.float32) for k, v in (extra_inputs or {}).items()})
    kernels = {n: scenarios.parse_kernel(n) for n in scenarios.KERNELS}
    kernels.update({k: np.asarray(v, np.float32) for k, v in (extra_kernels or {}).items()})
    for name, value, allowed in (("input", input, inputs), ("kernel", kernel, kernels),
                                 ("padding", padding, PADDINGS), ("stride", stride, STRIDES),
                                 ("dilation", dilation, DILATIONS), ("channels", channels, CHANNELS)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    start = dict(input=input, kernel=kernel, pad=padding, stride=stride, dil=dilation, flip=int(bool(flip)),
                 chan=channels, pass_="backward" if backward else "forward")
    data = conv_data(inputs, kernels, start)
    links = " · ".join(f'<a href="https://d2l.ai/{u}">D2L {t}</a>' for t, u in D2L_LINKS)
    intro = ("A kernel slides over the input; each output cell is the sum of the window's values times the "
             "kernel's (<b>cross-correlation</b>, what deep-learning libraries call convolution; tick <i>flip</i> "
             "for strict convolution, the kernel turned by 180°). Turn the knobs, scrub the window, hover any "
             "output cell for its arithmetic. The <i>backward</i> pass shows the kernel's gradient (the input "
             f"correlated with the output gradient) and the input's gradient (a full convolution). The same "
             "convolution on a GPU, thread by thread: <code>numbacnn explore cuda</code>. "
             f"{links}")
    return build("conv", "numbacnn explore conv: cross-correlation, window by window", intro, data)
