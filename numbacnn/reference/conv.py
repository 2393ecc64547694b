"""Plain NumPy cross-correlation and convolution (numbacnn.reference.conv), written to read like D2L chapter 6.

These are teaching text and the first oracle for the fast kernels: slow, obvious loops.
Shapes: x (N, C, H, W), weight (O, C // groups, KH, KW), bias (O,), output (N, O, HO, WO).
"""
from __future__ import annotations

import numpy as np


def corr2d(X, K):
    """2-D cross-correlation (D2L 6.2.1): Y[i, j] = sum(X[i:i+h, j:j+w] * K)."""
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=np.result_type(X, K))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X, K):
    """Multiple input channels (D2L 6.4.1): correlate each channel, then add them up."""
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    """Multiple output channels (D2L 6.4.2): one multi-input correlation per output kernel."""
    return np.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K):
    """1x1 convolution as a matrix product (D2L 6.4.3): X (C, H, W), K (O, C, 1, 1)."""
    c_i, h, w = X.shape
    c_o = K.shape[0]
    Y = K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)
    return Y.reshape(c_o, h, w)


def _dilate(K, dh, dw):
    """Spread a kernel out with zeros between its taps (dilation)."""
    kh, kw = K.shape[-2:]
    out = np.zeros(K.shape[:-2] + (dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=K.dtype)
    out[..., ::dh, ::dw] = K
    return out


def conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, flip=False):
    """Batched multi-channel cross-correlation with stride, padding, dilation and groups.

    ``padding`` is (top, bottom, left, right). ``flip=True`` flips the kernel in both
    axes first, which turns cross-correlation into strict convolution (D2L 6.2.5).
    """
    if flip:
        weight = weight[:, :, ::-1, ::-1]
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    k = _dilate(weight, *dilation)
    sh, sw = stride
    n_out, c_per_group = weight.shape[:2]
    o_per_group = n_out // groups
    out = []
    for xi in xp:  # each example
        maps = []
        for o in range(n_out):
            g = o // o_per_group
            channels = xi[g * c_per_group:(g + 1) * c_per_group]
            y = corr2d_multi_in(channels, k[o])[::sh, ::sw]
            if bias is not None:
                y = y + bias[o]
            maps.append(y)
        out.append(np.stack(maps))
    return np.stack(out).astype(x.dtype)


def conv2d_backward(grad_out, x, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                    flip=False):
    """Gradients of conv2d by the chain rule, one output element at a time.

    Each output y[n, o, i, j] = b[o] + sum over its window of x * w, so its gradient g
    flows to every input element of the window (times the weight it met) and to every
    weight (times the input it met).
    """
    w = weight[:, :, ::-1, ::-1] if flip else weight
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))).astype(np.float64)
    gxp = np.zeros_like(xp)
    gw = np.zeros(w.shape, dtype=np.float64)
    sh, sw = stride
    dh, dw = dilation
    n_out, c_per_group, kh, kw = w.shape
    o_per_group = n_out // groups
    N, _, HO, WO = grad_out.shape
    for n in range(N):
        for o in range(n_out):
            cs = slice((o // o_per_group) * c_per_group, (o // o_per_group + 1) * c_per_group)
            for i in range(HO):
                for j in range(WO):
                    g = grad_out[n, o, i, j]
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    gxp[n, cs, rows, cols] += g * w[o]
                    gw[o] += g * xp[n, cs, rows, cols]
    gx = gxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    if flip:
        gw = gw[:, :, ::-1, ::-1]
    gb = None if bias is None else grad_out.sum(axis=(0, 2, 3)).astype(bias.dtype)
    return gx.astype(x.dtype), gw.astype(weight.dtype), gb
