"""2-D cross-correlation / convolution (numbacnn.conv): the public functions; they check the arguments once, then
run the chosen device's kernel.

Shapes (NCHW): x (N, C, H, W), weight (O, C // groups, KH, KW), bias (O,) -> y (N, O, HO, WO) with
    HO = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1   (WO likewise).
The forward pass is the formula of D2L 6.2 / 6.3 / 6.4, one output element at a time:
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
where g = o // (O // groups) is the group of output channel o and out-of-range x reads are the zero padding.

Siblings: ``numbacnn.reference.conv`` (plain NumPy, book-like), ``numbacnn.cpu.conv`` (kernel 1, the formula, and
the CPU launchers; kernels 2 and 3 in ``numbacnn.cpu.conv_tiles``), ``numbacnn.cuda.conv`` (the GPU's kernels).
``kernel=1`` runs the formula kernel (for reading and stepping through); each module's ``KERNELS`` says what the
other numbers run. ``device=`` is "cpu", "cuda" or "cudasim"; None follows the arrays (device arrays mean CUDA).
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import check_flag, check_kernel, float_array, float_arrays, implementation, resolve_device
from .geometry import conv_geometry
from .limits import check_array_size


def corr2d(X, K, *, kernel=None, device=None, target=None):
    """2-D cross-correlation of a matrix X (H, W) with a kernel K (h, w) -> (H - h + 1, W - w + 1)."""
    device = resolve_device(device, target, X, K)
    impl = implementation(device, "conv")
    kernel = check_kernel(kernel, impl.KERNELS["corr2d"], "corr2d")
    _, (X, K) = float_arrays(device, (X, "X", 2), (K, "K", 2))
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1] or K.size == 0:
        raise ValueError(f"K of shape {tuple(K.shape)} must be non-empty and fit inside X of shape {tuple(X.shape)}")
    return impl.corr2d(X, K, kernel=kernel)


def _finite_or_formula(device, kernel, *arrays):
    """The CPU's kernel choice (None) becomes kernel 1 when an array holds NaN or inf (or its sum of squares
    passes the float range, |values| near 1e19 for float32: kernel 1 is right there too, only slower): kernels 2
    and 3 run over flat rows whose padding and junk columns multiply zeros by the inputs, and 0 * inf is NaN where
    kernel 1, like PyTorch, adds nothing. Finite data keeps the fast kernels. The sum of squares is one BLAS dot
    product (np.vdot), 4-5x quicker than a.sum() on a LeNet activation."""
    if kernel is not None or device != "cpu":
        return kernel
    with np.errstate(all="ignore"):  # inf - inf is the NaN looked for here, not a warning
        return 1 if not all(math.isfinite(float(np.vdot(a, a))) for a in arrays) else None


def _checked(device, x, weight, bias, stride, padding, dilation, groups):
    """x, weight, bias as arrays of one float dtype on ``device``, and their ConvGeometry."""
    dt, (x, weight, bias) = float_arrays(device, (x, "x", 4), (weight, "weight", 4), (bias, "bias", 1))
    geo = conv_geometry(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                        stride, padding, dilation, groups)
    (N, C, H, W), (pt, pb, pl, pr) = tuple(x.shape), geo.padding
    options = f"padding={padding!r}, stride={stride!r}, dilation={dilation!r}"
    check_array_size((N, weight.shape[0]) + geo.out_hw, dt, f"conv2d's output for x of shape {(N, C, H, W)} "
                                                            f"with {options}")
    check_array_size((C, H + pt + pb, W + pl + pr), dt, f"conv2d's padded input image for padding={padding!r}")
    return dt, x, weight, bias, geo


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False, kernel=None, device=None,
           target=None):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/groups, KH, KW) -> (N, O, HO, WO).

    Mirrors ``torch.nn.functional.conv2d``; ``padding`` is an int, a pair, ``"valid"`` or ``"same"``.
    ``flip=True`` flips the kernel in both axes: strict convolution (D2L 6.2.5). On CUDA the result is a
    device array. ``target=`` is the deprecated name of ``device=``.
    """
    device = resolve_device(device, target, x, weight, bias)
    impl = implementation(device, "conv")
    kernel = check_kernel(kernel, impl.KERNELS["conv2d"], "conv2d")
    flip = check_flag(flip, "flip")
    _, x, weight, bias, geo = _checked(device, x, weight, bias, stride, padding, dilation, groups)
    if any(geo.padding):
        kernel = _finite_or_formula(device, kernel, weight)
    return impl.conv2d(x, weight, bias, geo, flip=flip, kernel=kernel)


def conv2d_activation(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation,
                      device=None):
    """relu(conv2d(x, weight, bias, ...)) for activation="relu", sigmoid(...) for "sigmoid": the same bits as the
    two ops. On the CPU, where conv2d takes kernel 4 (a tile of examples), the activation is applied inside the
    kernel, before its output leaves the cache; elsewhere (CUDA, formula_kernels()) it is the two ops.
    ``Sequential`` uses it for a Conv2d followed by a ReLU or a Sigmoid when nothing observes the layer outputs."""
    from . import functional

    if activation not in ("relu", "sigmoid"):
        raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
    device = resolve_device(device, None, x, weight, bias)
    impl = implementation(device, "conv")
    kernel = check_kernel(None, impl.KERNELS["conv2d"], "conv2d")
    if device != "cpu" or kernel is not None:
        y = conv2d(x, weight, bias, stride, padding, dilation, groups, device=device)
        return getattr(functional, activation)(y, device=device)
    _, x, weight, bias, geo = _checked(device, x, weight, bias, stride, padding, dilation, groups)
    if any(geo.padding):
        kernel = _finite_or_formula(device, kernel, weight)
    return impl.conv2d(x, weight, bias, geo, flip=False, kernel=kernel, activation=activation)


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False,
                    need_grad_x=True, kernel=None, device=None, target=None):
    """Gradients of conv2d: (grad_x like x, grad_weight like weight, grad_bias like bias or None).

    grad_weight is the correlation of the input with the output gradient; grad_x is the "full"
    convolution of the output gradient with the kernel. ``need_grad_x=False`` skips grad_x (returned
    as None), as PyTorch does for a first layer whose input needs no gradient.
    """
    device = resolve_device(device, target, grad_out, x, weight, bias)
    impl = implementation(device, "conv")
    kernel = check_kernel(kernel, impl.KERNELS["conv2d_backward"], "conv2d_backward")
    flip, need_grad_x = check_flag(flip, "flip"), check_flag(need_grad_x, "need_grad_x")
    dt, x, weight, bias, geo = _checked(device, x, weight, bias, stride, padding, dilation, groups)
    gy = float_array(device, grad_out, "grad_out", 4, dt)
    expected = (x.shape[0], weight.shape[0]) + geo.out_hw
    if tuple(gy.shape) != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {tuple(gy.shape)}")
    kernel = _finite_or_formula(device, kernel, x, weight)
    return impl.conv2d_backward(gy, x, weight, bias, geo, flip=flip, need_grad_x=need_grad_x, kernel=kernel)
