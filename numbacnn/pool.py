"""Pooling, the public functions (numbacnn.pool): each checks its arguments once and runs the chosen kernel.

D2L 6.5. Shapes (NCHW): x (N, C, H, W) -> y (N, C, HO, WO), one plane at a time, channels never mixed. With
    HO = (H + 2*ph - dh*(KH - 1) - 1 + (sh - 1 if ceil_mode else 0)) // sh + 1   (WO likewise),
less one when ceil_mode would start the last window in the right/bottom padding, window (i, j) covers
rows i*sh - ph + p*dh (p < KH) and columns j*sw - pw + q*dw (q < KW):
    max_pool2d  y[n, c, i, j] = max over the window of x (padding is -inf, never chosen)
    min_pool2d  y[n, c, i, j] = min over the window of x (padding is +inf) = -max_pool2d(-x)
    avg_pool2d  y[n, c, i, j] = sum over the window of x / divisor (padding is 0; dilation 1)
Adaptive pooling picks the windows from the output size: rows floor(i*H/HO) .. ceil((i+1)*H/HO) - 1.

Everything follows PyTorch's CPU kernels to the last bit where it can: max/min take the *first* extreme
of a window in row-major order (strict comparison) and a NaN wins (the last NaN of the window); indices
are flat positions h*W + w in the input plane; float32 sums are accumulated in float32 in row-major order.

Every op also takes ``kernel=`` (None: the fastest that fits; 1: the formula, one output element at a time;
the numbers are the target's ``KERNELS``), ``device=`` ('cpu', 'cuda' or 'cudasim'; None follows the arrays)
and ``target=`` (the pre-0.2 name of ``device=``, deprecated). Siblings: ``numbacnn.geometry`` (the shape and
option rules), ``numbacnn.reference.pool`` (plain NumPy, the book's version), ``numbacnn.cpu.pool`` (@njit
kernels) and ``numbacnn.cuda.pool`` (@cuda.jit kernels), both with the same launchers.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_flag, check_kernel, contiguous, float_array, float_arrays, implementation, \
    is_device_array, resolve_device
from .geometry import adaptive_pool_geometry, avg_options, pool_geometry
from .limits import check_array_size


def _setup(device, op, kernel, x):
    """(target module, kernel number or None, dtype, x ready for the target) for one call of ``op``."""
    impl = implementation(device, "pool")
    kernel = check_kernel(kernel, impl.KERNELS[op], op)
    dt, (x,) = float_arrays(device, (x, "x", 4))
    return impl, kernel, dt, x


def _check_output(op, x, out_hw, dtype, options):
    """Refuse an output (and its int64 indices) above the size limit before anything is allocated."""
    check_array_size(tuple(x.shape[:2]) + tuple(out_hw), np.dtype(np.int64) if "max" in op or "min" in op else dtype,
                     f"{op}'s output for x of shape {tuple(x.shape)} with {options}")


def _grad(device, grad_out, dtype, expected):
    """grad_out in x's dtype, ready for the target, with the output's shape ``expected``."""
    gy = float_array(device, grad_out, "grad_out", 4, dtype)
    if tuple(gy.shape) != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {tuple(gy.shape)}")
    return gy


def _check_indices(device, indices, expected):
    """The forward's ``return_indices`` output, checked the same way for NumPy and device arrays (integer
    positions h*W + w, the output's shape), ready for the target: int64 NumPy on the CPU, a device array on CUDA."""
    on_device = is_device_array(indices)
    if on_device and device == "cpu":
        raise TypeError("indices is a CUDA device array but the op runs on the CPU: pass device='cuda' "
                        "(or copy it with numbacnn.cuda.to_host)")
    idx = indices if on_device else np.asarray(indices)
    if np.dtype(idx.dtype).kind not in "iu":
        raise TypeError(f"indices must hold integer positions h*W + w (the forward's return_indices output), "
                        f"got dtype {np.dtype(idx.dtype)}")
    if tuple(idx.shape) != expected:
        raise ValueError(f"indices must have the output's shape {expected}, got {tuple(idx.shape)}")
    if device == "cpu":
        return contiguous(idx, np.int64, "indices")
    from .cuda.arrays import to_device

    return to_device(idx if on_device else np.ascontiguousarray(idx, dtype=np.int64))


def _extreme_pool(op, sign, device, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, kernel):
    return_indices = check_flag(return_indices, "return_indices")
    impl, kernel, dt, x = _setup(device, op, kernel, x)
    geo = pool_geometry(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    _check_output(op, x, geo.out_hw, dt, f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}, "
                                         f"dilation={dilation!r}, ceil_mode={ceil_mode!r}")
    out, idx = impl.max_pool2d(x, geo, sign, kernel=kernel)
    return (out, idx) if return_indices else out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               kernel=None, device=None, target=None):
    """Max pooling of x (N, C, H, W) -> (N, C, HO, WO), or (out, indices) with int64 indices h*W + w.

    Mirrors ``torch.nn.functional.max_pool2d``: stride defaults to kernel_size, padding is -inf.
    """
    device = resolve_device(device, target, x)
    return _extreme_pool("max_pool2d", 1.0, device, x, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices, kernel)


def min_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               kernel=None, device=None, target=None):
    """Min pooling of x (N, C, H, W) -> (N, C, HO, WO): -max_pool2d(-x), first minimum wins, padding is +inf."""
    device = resolve_device(device, target, x)
    return _extreme_pool("min_pool2d", -1.0, device, x, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices, kernel)


def _extreme_pool_backward(op, sign, device, grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                           indices, kernel):
    impl, kernel, dt, x = _setup(device, op, kernel, x)
    geo = pool_geometry(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    expected = tuple(x.shape[:2]) + geo.out_hw
    gy = _grad(device, grad_out, dt, expected)
    if indices is not None:
        indices = _check_indices(device, indices, expected)
    return impl.max_pool2d_backward(gy, x, geo, indices, sign, kernel=kernel)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None, kernel=None, device=None, target=None):
    """Gradient of max_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its winner (summed).

    ``indices`` (optional, N, C, HO, WO): the forward's ``return_indices`` output. Given, the winners are
    taken from it (as PyTorch's backward does) instead of being searched for again in x; x then only gives
    the shape. An index off the plane (a window that saw only padding) routes no gradient.
    """
    device = resolve_device(device, target, grad_out, x)
    return _extreme_pool_backward("max_pool2d_backward", 1.0, device, grad_out, x, kernel_size, stride, padding,
                                  dilation, ceil_mode, indices, kernel)


def min_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None, kernel=None, device=None, target=None):
    """Gradient of min_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its first minimum
    (or to the winners in ``indices``, min_pool2d's ``return_indices`` output, as in max_pool2d_backward)."""
    device = resolve_device(device, target, grad_out, x)
    return _extreme_pool_backward("min_pool2d_backward", -1.0, device, grad_out, x, kernel_size, stride, padding,
                                  dilation, ceil_mode, indices, kernel)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, kernel=None, device=None, target=None):
    """Average pooling of x (N, C, H, W) -> (N, C, HO, WO), mirroring ``torch.nn.functional.avg_pool2d``.

    Divisor: divisor_override if given; else the window size clipped to the padded input
    (count_include_pad=True) or to the input itself (False).
    """
    device = resolve_device(device, target, x)
    impl, kernel, dt, x = _setup(device, "avg_pool2d", kernel, x)
    geo = pool_geometry(tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode)
    include, override = avg_options(count_include_pad, divisor_override)
    _check_output("avg_pool2d", x, geo.out_hw, dt, f"kernel_size={kernel_size!r}, stride={stride!r}, "
                                                   f"padding={padding!r}, ceil_mode={ceil_mode!r}")
    return impl.avg_pool2d(x, geo, include, override, kernel=kernel)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None, *, kernel=None, device=None, target=None):
    """Gradient of avg_pool2d w.r.t. x (N, C, H, W): each output's gradient / divisor to every window cell."""
    device = resolve_device(device, target, grad_out, x)
    impl, kernel, dt, x = _setup(device, "avg_pool2d_backward", kernel, x)
    geo = pool_geometry(tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode)
    include, override = avg_options(count_include_pad, divisor_override)
    gy = _grad(device, grad_out, dt, tuple(x.shape[:2]) + geo.out_hw)
    return impl.avg_pool2d_backward(gy, x, geo, include, override, kernel=kernel)


def avg_pool2d_backward_after_sigmoid(grad_out, y, kernel_size, stride=None, padding=0, ceil_mode=False,
                                     count_include_pad=True, divisor_override=None, *, device=None):
    """sigmoid_backward(avg_pool2d_backward(grad_out, y, ...), None, y=y): the gradient w.r.t. the input of a
    sigmoid whose output y was average-pooled, the same bits as those two ops. On the CPU, for 2x2 windows with
    stride 2 (d2l LeNet), one pass over y (``numbacnn.cpu.pool_2x2.avg_pool2d_sigmoid_backward_kernel2``)
    instead of two and the full-size gradient between them; elsewhere the two ops. ``Sequential`` uses it for a
    Sigmoid followed by an AvgPool2d when nothing observes the gradient in between."""
    from .functional import sigmoid_backward

    device = resolve_device(device, None, grad_out, y)
    _, kernel, dt, y = _setup(device, "avg_pool2d_backward", None, y)
    if device == "cpu" and kernel is None:  # not under formula_kernels(): there each op runs its formula
        from .cpu.pool_2x2 import avg_pool2d_sigmoid_backward as fused

        geo = pool_geometry(tuple(y.shape), kernel_size, stride, padding, 1, ceil_mode)
        include, override = avg_options(count_include_pad, divisor_override)
        gx = fused(_grad(device, grad_out, dt, tuple(y.shape[:2]) + geo.out_hw), y, geo, include, override)
        if gx is not None:
            return gx
    grad_y = avg_pool2d_backward(grad_out, y, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                 divisor_override, device=device)
    return sigmoid_backward(grad_y, None, y=y, device=device)


def adaptive_avg_pool2d(x, output_size, *, kernel=None, device=None, target=None):
    """Adaptive average pooling of x (N, C, H, W) -> (N, C, HO, WO); output_size 1 is global average pooling."""
    device = resolve_device(device, target, x)
    impl, kernel, dt, x = _setup(device, "adaptive_avg_pool2d", kernel, x)
    out_hw = adaptive_pool_geometry(tuple(x.shape), output_size)
    _check_output("adaptive_avg_pool2d", x, out_hw, dt, f"output_size={output_size!r}")
    return impl.adaptive_avg_pool2d(x, out_hw, kernel=kernel)


def adaptive_avg_pool2d_backward(grad_out, x, output_size, *, kernel=None, device=None, target=None):
    """Gradient of adaptive_avg_pool2d w.r.t. x (N, C, H, W)."""
    device = resolve_device(device, target, grad_out, x)
    impl, kernel, dt, x = _setup(device, "adaptive_avg_pool2d_backward", kernel, x)
    gy = _grad(device, grad_out, dt, tuple(x.shape[:2]) + adaptive_pool_geometry(tuple(x.shape), output_size))
    return impl.adaptive_avg_pool2d_backward(gy, x, kernel=kernel)


def adaptive_max_pool2d(x, output_size, return_indices=False, *, kernel=None, device=None, target=None):
    """Adaptive max pooling of x (N, C, H, W) -> (N, C, HO, WO), or (out, int64 indices h*W + w)."""
    device = resolve_device(device, target, x)
    return_indices = check_flag(return_indices, "return_indices")
    impl, kernel, dt, x = _setup(device, "adaptive_max_pool2d", kernel, x)
    out_hw = adaptive_pool_geometry(tuple(x.shape), output_size)
    _check_output("adaptive_max_pool2d", x, out_hw, dt, f"output_size={output_size!r}")
    out, idx = impl.adaptive_max_pool2d(x, out_hw, kernel=kernel)
    return (out, idx) if return_indices else out


def adaptive_max_pool2d_backward(grad_out, x, output_size, *, kernel=None, device=None, target=None):
    """Gradient of adaptive_max_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its winner."""
    device = resolve_device(device, target, grad_out, x)
    impl, kernel, dt, x = _setup(device, "adaptive_max_pool2d_backward", kernel, x)
    gy = _grad(device, grad_out, dt, tuple(x.shape[:2]) + adaptive_pool_geometry(tuple(x.shape), output_size))
    return impl.adaptive_max_pool2d_backward(gy, x, kernel=kernel)
