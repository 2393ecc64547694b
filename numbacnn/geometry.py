"""conv2d's options checked and its output size computed, the way torch.nn.functional.conv2d does.

Plain Python (no Numba), so the CLI can check a command's arguments before any kernel loads.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import pair


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
        raise ValueError(f"groups={groups} must divide the input channels, got C={C}")
    if O % groups:
        raise ValueError(f"groups={groups} must divide the output channels, got weight.shape[0]={O}")
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
        raise ValueError(f"output size would be {HO}x{WO}: the (dilated) kernel {KH}x{KW} is larger than "
                         f"the padded input {H + pads[0] + pads[1]}x{W + pads[2] + pads[3]}")
    return ConvGeometry((sh, sw), pads, (dh, dw), groups, (HO, WO))
