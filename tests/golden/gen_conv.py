"""Write tests/golden/conv.npz with PyTorch (CPU): conv2d outputs and gradients over a grid of options.

Run: python tests/golden/gen_conv.py   (needs torch; the tests read the file without it)
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from format import GOLDEN_DIR, save_cases  # noqa: E402


def conv_case(name, rng, N, C, H, W, O, KH, KW, *, stride=1, padding=0, dilation=1, groups=1, bias=True,
              flip=False, dtype=np.float32):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // groups, KH, KW)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    pad = padding if isinstance(padding, str) else tuple(padding) if isinstance(padding, list) else padding
    y = F.conv2d(tx, tw.flip(2, 3) if flip else tw, tb, stride=stride, padding=pad, dilation=dilation, groups=groups)
    gy = torch.tensor(rng.standard_normal(tuple(y.shape)).astype(dtype))
    y.backward(gy)
    arrays = dict(x=x, weight=w, y=y.detach().numpy(), grad_out=gy.numpy(), grad_x=tx.grad.numpy(),
                  grad_weight=tw.grad.numpy())
    if bias:
        arrays.update(bias=b, grad_bias=tb.grad.numpy())
    opts = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, flip=flip)
    return dict(name=name, options=opts, arrays=arrays)


def main():
    rng = np.random.default_rng(0)
    cases = []
    grid = itertools.product([1, 2, [2, 1]], [0, 1, [2, 0], "valid"], [1, [2, 1]], [False, True])
    for k, (stride, padding, dilation, flip) in enumerate(grid):
        cases.append(conv_case(f"grid{k:02d}", rng, 2, 2, 7, 8, 3, 3, 2, stride=stride, padding=padding,
                               dilation=dilation, bias=k % 2 == 0, flip=flip))
    for k, (kh, kw, dil) in enumerate([(3, 3, 1), (2, 2, 1), (4, 3, 1), (2, 4, 2), (1, 1, 1), (3, 2, [1, 2])]):
        cases.append(conv_case(f"same{k}", rng, 1, 2, 6, 7, 2, kh, kw, padding="same", dilation=dil))
    for k, (C, O, g) in enumerate([(4, 6, 2), (6, 6, 3), (4, 4, 4), (3, 6, 3)]):
        cases.append(conv_case(f"groups{k}", rng, 2, C, 6, 6, O, 3, 3, groups=g, padding=1, stride=k % 2 + 1))
    cases.append(conv_case("lenet_conv1", rng, 2, 1, 28, 28, 6, 5, 5, padding=2))
    cases.append(conv_case("lenet_conv2", rng, 2, 6, 14, 14, 16, 5, 5))
    cases.append(conv_case("one_by_one", rng, 2, 3, 5, 5, 4, 1, 1))
    cases.append(conv_case("float64", rng, 1, 2, 6, 6, 2, 3, 3, padding=1, stride=2, dtype=np.float64))
    save_cases(GOLDEN_DIR / "conv.npz", cases)
    print(f"wrote {len(cases)} conv cases")


if __name__ == "__main__":
    main()
