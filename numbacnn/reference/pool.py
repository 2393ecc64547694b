"""Plain NumPy pooling (numbacnn.reference.pool), written like D2L 6.5: teaching text and an oracle for the kernels.

First the book's ``pool2d`` on one matrix, then batched versions (N, C, H, W) -> (N, C, HO, WO) with
padding, stride, dilation and ceil_mode, their gradients, and adaptive pooling. Options are ints or pairs,
as in the public API; nothing is validated here (``numbacnn.pool`` does that).
"""
from __future__ import annotations

import numpy as np


def pool2d(X, pool_size, mode="max"):
    """D2L 6.5.1: slide a (p_h, p_w) window over X (H, W) with stride 1 and take its max or mean."""
    p_h, p_w = pool_size
    Y = np.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i:i + p_h, j:j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i:i + p_h, j:j + p_w].mean()
    return Y


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def output_size(n, k, s, p, d=1, ceil_mode=False):
    """floor((n + 2p - d(k-1) - 1) / s) + 1, or with ceil; a window may not start in the right padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _options(x, kernel_size, stride, padding, dilation, ceil_mode):
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    p, d = _pair(padding), _pair(dilation)
    out = tuple(output_size(n, *a, ceil_mode) for n, a in zip(x.shape[2:], zip(k, s, p, d)))
    return k, s, p, d, out


def _taps(i, k, s, p, d, n):
    """Positions read by window i along one axis: i*s - p + t*d for t < k, the padding left out."""
    return [h for h in range(i * s - p, i * s - p + d * (k - 1) + 1, d) if 0 <= h < n]


def _first_tap(i, s, p, d):
    start = i * s - p
    return start + d * -(start // d) if start < 0 else start


def _winner(window):
    """Flat position of each window's winner (last axis): the first maximum, or the last NaN (PyTorch's rule)."""
    first_max = window.argmax(-1)
    isnan = window != window
    last_nan = window.shape[-1] - 1 - isnan[..., ::-1].argmax(-1)
    return np.where(isnan.any(-1), last_nan, first_max)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling: each output is the largest element of its window; padding (-inf) never wins.

    Indices are flat positions h*W + w in the input plane.
    """
    N, C, H, W = x.shape
    k, s, p, d, (HO, WO) = _options(x, kernel_size, stride, padding, dilation, ceil_mode)
    Y = np.full((N, C, HO, WO), -np.inf, dtype=x.dtype)
    idx = np.zeros((N, C, HO, WO), dtype=np.int64)
    for i in range(HO):
        rows = _taps(i, k[0], s[0], p[0], d[0], H)
        for j in range(WO):
            cols = _taps(j, k[1], s[1], p[1], d[1], W)
            if not rows or not cols:  # a window of padding only: -inf, "won" by its first tap (as in PyTorch)
                idx[:, :, i, j] = _first_tap(i, s[0], p[0], d[0]) * W + _first_tap(j, s[1], p[1], d[1])
                continue
            window = x[:, :, rows][:, :, :, cols].reshape(N, C, -1)
            a = _winner(window)
            Y[:, :, i, j] = np.take_along_axis(window, a[..., None], -1)[..., 0]
            idx[:, :, i, j] = np.array(rows)[a // len(cols)] * W + np.array(cols)[a % len(cols)]
    return (Y, idx) if return_indices else Y


def min_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Min pooling is max pooling of -x, negated (padding is +inf; the first minimum wins)."""
    Y, idx = max_pool2d(-x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    return (-Y, idx) if return_indices else -Y


def _scatter(grad_out, idx, x):
    """Each output sends its gradient to the input element that won its window (added up); an index off
    the plane (a window that saw only padding) sends it nowhere."""
    N, C, H, W = x.shape
    gx = np.zeros((N, C, H * W + 1))  # one spare cell at the end collects the off-plane indices
    idx = np.where((idx >= 0) & (idx < H * W), idx, H * W)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            gx[n, c, idx[:, :, i, j]] += grad_out[:, :, i, j]  # (n, c) pairs are distinct: no lost updates
    return gx[:, :, :H * W].reshape(x.shape).astype(x.dtype)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None):
    """Gradient of max_pool2d: d y[i, j] / d x[h, w] is 1 for the winner of window (i, j), else 0.

    ``indices``: the forward's return_indices output, so the winners need not be found again (PyTorch's way).
    """
    if indices is None:
        _, indices = max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    return _scatter(grad_out, indices, x)


def min_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None):
    """Gradient of min_pool2d: the gradient goes to each window's first minimum (or to ``indices``)."""
    if indices is None:
        _, indices = min_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    return _scatter(grad_out, indices, x)


def _avg_windows(HO, k, s, p, n, count_include_pad):
    """For each output along one axis: (first, last + 1) inside the input and the divisor's factor."""
    out = []
    for i in range(HO):
        start, end = i * s - p, min(i * s - p + k, n + p)  # the window, clipped to the padded input
        lo, hi = max(start, 0), min(end, n)  # and clipped to the input
        out.append((lo, hi, end - start if count_include_pad else hi - lo))
    return out


def _avg_plan(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    k, s, p, _, (HO, WO) = _options(x, kernel_size, stride, padding, 1, ceil_mode)
    rows = _avg_windows(HO, k[0], s[0], p[0], x.shape[2], count_include_pad)
    cols = _avg_windows(WO, k[1], s[1], p[1], x.shape[3], count_include_pad)
    for i, (r0, r1, fr) in enumerate(rows):
        for j, (c0, c1, fc) in enumerate(cols):
            if r0 < r1 and c0 < c1:
                yield i, j, slice(r0, r1), slice(c0, c1), divisor_override or fr * fc


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling: window sum / divisor, where the divisor counts the padding cells
    (count_include_pad), only the real cells, or is divisor_override."""
    N, C = x.shape[:2]
    HO, WO = _options(x, kernel_size, stride, padding, 1, ceil_mode)[-1]
    Y = np.zeros((N, C, HO, WO))
    for i, j, rows, cols, divisor in _avg_plan(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                               divisor_override):
        Y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3), dtype=np.float64) / divisor
    return Y.astype(x.dtype)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """Gradient of avg_pool2d: each output's gradient, divided by its divisor, to every cell of its window."""
    gx = np.zeros(x.shape)
    for i, j, rows, cols, divisor in _avg_plan(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                               divisor_override):
        gx[:, :, rows, cols] += grad_out[:, :, i, j, None, None] / divisor
    return gx.astype(x.dtype)


def adaptive_windows(n_in, n_out):
    """Window i of adaptive pooling along one axis: floor(i*n_in/n_out) .. ceil((i+1)*n_in/n_out) - 1."""
    return [slice((i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)) for i in range(n_out)]


def _adaptive_size(x, output_size):
    return tuple(n if o is None else o for n, o in zip(x.shape[2:], _pair(output_size)))


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling to (HO, WO) = output_size; (1, 1) is global average pooling."""
    HO, WO = _adaptive_size(x, output_size)
    Y = np.zeros(x.shape[:2] + (HO, WO))
    for i, rows in enumerate(adaptive_windows(x.shape[2], HO)):
        for j, cols in enumerate(adaptive_windows(x.shape[3], WO)):
            Y[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3), dtype=np.float64)
    return Y.astype(x.dtype)


def adaptive_avg_pool2d_backward(grad_out, x, output_size):
    """Gradient of adaptive_avg_pool2d: each output's gradient spread evenly over its window."""
    HO, WO = _adaptive_size(x, output_size)
    gx = np.zeros(x.shape)
    for i, rows in enumerate(adaptive_windows(x.shape[2], HO)):
        for j, cols in enumerate(adaptive_windows(x.shape[3], WO)):
            area = (rows.stop - rows.start) * (cols.stop - cols.start)
            gx[:, :, rows, cols] += grad_out[:, :, i, j, None, None] / area
    return gx.astype(x.dtype)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling to (HO, WO) = output_size; indices are h*W + w as in max_pool2d."""
    N, C, H, W = x.shape
    HO, WO = _adaptive_size(x, output_size)
    Y = np.zeros((N, C, HO, WO), dtype=x.dtype)
    idx = np.zeros((N, C, HO, WO), dtype=np.int64)
    for i, rows in enumerate(adaptive_windows(H, HO)):
        for j, cols in enumerate(adaptive_windows(W, WO)):
            window = x[:, :, rows, cols].reshape(N, C, -1)
            a = _winner(window)
            width = cols.stop - cols.start
            Y[:, :, i, j] = np.take_along_axis(window, a[..., None], -1)[..., 0]
            idx[:, :, i, j] = (rows.start + a // width) * W + cols.start + a % width
    return (Y, idx) if return_indices else Y


def adaptive_max_pool2d_backward(grad_out, x, output_size):
    """Gradient of adaptive_max_pool2d: each output's gradient to the winner of its window."""
    _, idx = adaptive_max_pool2d(x, output_size, return_indices=True)
    return _scatter(grad_out, idx, x)
