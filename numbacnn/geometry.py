"""Shape and option rules of conv and pool (numbacnn.geometry), checked the way torch.nn.functional does.

``conv_geometry`` (conv2d), ``pool_geometry`` (max/min/avg pooling), ``adaptive_pool_geometry`` and
``avg_options`` (avg_pool2d's divisor options): errors name the argument, the results are what both targets'
kernels need. Plain Python (no Numba), so the CLI can check a command's arguments before any kernel loads.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._checks import MAX_OPTION, check_flag, pair


@dataclass(frozen=True)
class ConvGeometry:
    """Validated options of one conv2d call (padding as top, bottom, left, right)."""

    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]


def conv_geometry(x_shape, w_shape, b_shape=None, stride=1, padding=0, dilation=1, groups=1) -> ConvGeometry:
    """Check shapes and options the way torch.nn.functional.conv2d does; errors name the argument."""
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    if len(w_shape) != 4:
        raise ValueError(f"weight must have 4 dimensions (O, C/groups, KH, KW), got {len(w_shape)} "
                         f"(shape {tuple(w_shape)})")
    N, C, H, W = x_shape
    O, Cg, KH, KW = w_shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if min(KH, KW) < 1 or O < 1:
        raise ValueError(f"kernel_size must be positive, got weight shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels, got C={C} (x shape {tuple(x_shape)})")
    if O % groups:
        raise ValueError(f"groups={groups} must divide the output channels, got weight.shape[0]={O} "
                         f"(weight shape {tuple(w_shape)})")
    if Cg * groups != C:
        raise ValueError(f"channel mismatch: x has C={C} channels but weight expects C/groups={Cg} "
                         f"with groups={groups} (weight shape {tuple(w_shape)})")
    if b_shape is not None and tuple(b_shape) != (O,):
        raise ValueError(f"bias must have shape ({O},), got {tuple(b_shape)}")
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"padding='same' is not supported for strided convolutions, got stride={stride!r}")
            th, tw = dh * (KH - 1), dw * (KW - 1)  # PyTorch puts the odd extra cell at the bottom / right
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        ph, pw = pair(padding, "padding", minimum=0)
        pads = (ph, ph, pw, pw)
    HO = (H + pads[0] + pads[1] - dh * (KH - 1) - 1) // sh + 1
    WO = (W + pads[2] + pads[3] - dw * (KW - 1) - 1) // sw + 1
    if HO < 1 or WO < 1:
        raise ValueError(f"output size would be {HO}x{WO}: the kernel {KH}x{KW} with dilation={dilation!r} is "
                         f"larger than x's {H}x{W} planes with padding={padding!r}")
    return ConvGeometry((sh, sw), pads, (dh, dw), groups, (HO, WO))


@dataclass(frozen=True)
class PoolGeometry:
    """Validated options of one max/min/avg pooling call (each a pair: rows, columns)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    out_hw: tuple[int, int]


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """Output length along one axis, PyTorch's ``pooling_output_shape`` (floor division, ceil rule)."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def pool_geometry(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolGeometry:
    """Check shapes and options the way torch.nn.functional.max_pool2d does; errors name the argument.

    ``stride=None`` (or an empty list, as torch allows) means ``stride = kernel_size``.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    H, W = int(x_shape[2]), int(x_shape[3])
    kernel = pair(kernel_size, "kernel_size")
    strides = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else pair(stride, "stride")
    dil = pair(dilation, "dilation")
    pads = pair(padding, "padding", minimum=0)
    ceil_mode = check_flag(ceil_mode, "ceil_mode")
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise ValueError(f"padding must be at most half of kernel_size in each dimension, got padding={padding!r} "
                         f"with kernel_size={kernel_size!r}")
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip((H, W), kernel, strides, pads, dil))
    if min(out) < 1:
        raise ValueError(f"output size would be {out[0]}x{out[1]}: the window (kernel_size={kernel_size!r}, "
                         f"dilation={dilation!r}) is larger than x's padded planes "
                         f"{H + 2 * pads[0]}x{W + 2 * pads[1]} (padding={padding!r})")
    return PoolGeometry(kernel, strides, pads, dil, ceil_mode, out)


def adaptive_pool_geometry(x_shape, output_size) -> tuple[int, int]:
    """(HO, WO) for adaptive pooling: ``output_size`` is an int or a pair (None keeps that input size)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        out = tuple(x_shape[2 + k] if v is None else v for k, v in enumerate(output_size))
    else:
        out = (output_size, output_size)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out):
        raise ValueError(f"output_size must be an int or a pair of ints, got {output_size!r}")
    if min(out) < 1 or max(out) > MAX_OPTION:
        raise ValueError(f"output_size must be positive and at most {MAX_OPTION}, got {output_size!r}")
    if min(x_shape[2], x_shape[3]) < 1:
        raise ValueError(f"x must have non-empty planes, got shape {tuple(x_shape)}")
    return int(out[0]), int(out[1])


def avg_options(count_include_pad, divisor_override) -> tuple[bool, int]:
    """avg_pool2d's divisor options as the kernels take them: (count_include_pad, divisor_override or 0)."""
    count_include_pad = check_flag(count_include_pad, "count_include_pad")
    if divisor_override is None:
        return count_include_pad, 0
    if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
        raise TypeError(f"divisor_override must be None or an int, got {divisor_override!r}")
    if divisor_override == 0 or abs(divisor_override) > MAX_OPTION:
        raise ValueError(f"divisor_override must be nonzero and at most {MAX_OPTION} in size, got {divisor_override!r}")
    return count_include_pad, int(divisor_override)
