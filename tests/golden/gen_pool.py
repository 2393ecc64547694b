"""Write tests/golden/pool.npz with PyTorch (CPU): pooling outputs, indices and gradients over a grid of options.

Run: python tests/golden/gen_pool.py   (needs torch; the tests read the file without it)

Each case's options are {"op": name, "kwargs": {...}} with kwargs as the numbacnn function takes them
(return_indices left out); arrays: x, y, grad_out, grad_x, and indices for max/min pooling.
min_pool2d has no torch op: its golden values are -max_pool2d(-x).
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


def _torch_kwargs(kwargs):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def run_torch(op, x, kwargs, gy=None, rng=None):
    """(y, indices or None, grad_out, grad_x) of one torch pooling call."""
    tx = torch.tensor(x, requires_grad=True)
    kw = _torch_kwargs(kwargs)
    idx = None
    if op == "max_pool2d":
        y, idx = F.max_pool2d(tx, return_indices=True, **kw)
    elif op == "min_pool2d":
        y, idx = F.max_pool2d(-tx, return_indices=True, **kw)
        y = -y
    elif op == "avg_pool2d":
        y = F.avg_pool2d(tx, **kw)
    elif op == "adaptive_avg_pool2d":
        y = F.adaptive_avg_pool2d(tx, **kw)
    elif op == "adaptive_max_pool2d":
        y, idx = F.adaptive_max_pool2d(tx, return_indices=True, **kw)
    else:
        raise ValueError(op)
    if gy is None:
        gy = rng.standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), None if idx is None else idx.numpy(), gy, tx.grad.numpy()


def case(name, op, x, kwargs, rng):
    y, idx, gy, gx = run_torch(op, x, kwargs, rng=rng)
    arrays = dict(x=x, y=y, grad_out=gy, grad_x=gx)
    if idx is not None:
        arrays["indices"] = idx
    return dict(name=name, options=dict(op=op, kwargs=kwargs), arrays=arrays)


def make_x(rng, shape, ties=False, dtype=np.float32):
    """Random normal input, or small integers (many ties) when ``ties``."""
    if ties:
        return rng.integers(0, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def valid(kwargs, hw):
    """Whether torch accepts these options on an input of size hw (padding <= kernel // 2, output >= 1)."""
    try:
        F.max_pool2d(torch.zeros((1, 1) + hw), **_torch_kwargs(kwargs)) if "dilation" in kwargs else \
            F.avg_pool2d(torch.zeros((1, 1) + hw), **_torch_kwargs(kwargs))
        return True
    except RuntimeError:
        return False


def main():
    rng = np.random.default_rng(0)
    cases = []

    # max / min pooling: kernel x stride x padding x ceil_mode, dilation cycling; every other input full of ties
    dilations = [1, 2, [1, 2]]
    grid = itertools.product([2, 3, [2, 3]], [None, 1, [2, 1]], [0, 1], [False, True])
    for k, (kernel, stride, padding, ceil) in enumerate(grid):
        kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilations[k % 3], ceil_mode=ceil)
        hw = (int(rng.integers(5, 8)), int(rng.integers(5, 8)))
        if not valid(kwargs, hw):
            continue
        op = "min_pool2d" if k % 4 == 3 else "max_pool2d"
        cases.append(case(f"{op[:3]}_grid{k:02d}", op, make_x(rng, (1, 2) + hw, ties=k % 2 == 1), kwargs, rng))
    specials = [
        ("max_k1", dict(kernel_size=1, stride=1, padding=0, dilation=1, ceil_mode=False), (5, 6), False),
        ("max_k1_s2", dict(kernel_size=1, stride=2, padding=0, dilation=1, ceil_mode=True), (5, 6), False),
        ("max_k31_pad10", dict(kernel_size=[3, 1], stride=[1, 2], padding=[1, 0], dilation=1, ceil_mode=True),
         (6, 5), True),
        ("max_lenet", dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False), (8, 8), False),
        ("max_book_3x3_pad1_s2", dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False), (4, 4), True),
        ("max_dil2_pad1_ceil", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), (7, 6), True),
        ("min_k31_pad10", dict(kernel_size=[3, 1], stride=[1, 2], padding=[1, 0], dilation=1, ceil_mode=True),
         (6, 5), True),
        ("min_dil2_ceil", dict(kernel_size=2, stride=3, padding=1, dilation=[2, 1], ceil_mode=True), (7, 7), False),
    ]
    for name, kwargs, hw, ties in specials:
        op = "min_pool2d" if name.startswith("min") else "max_pool2d"
        cases.append(case(name, op, make_x(rng, (2, 2) + hw, ties=ties), kwargs, rng))
    overlap = dict(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=False)
    cases.append(case("max_constant", "max_pool2d", np.ones((1, 2, 5, 5), np.float32), overlap, rng))
    cases.append(case("min_constant", "min_pool2d", np.ones((1, 2, 5, 5), np.float32), overlap, rng))
    x_nan = make_x(rng, (1, 2, 5, 5))
    x_nan[0, 0, 1, 1] = x_nan[0, 0, 1, 3] = x_nan[0, 1, 4, 0] = np.nan
    cases.append(case("max_nan", "max_pool2d", x_nan, dict(kernel_size=3, stride=1, padding=0, dilation=1,
                                                           ceil_mode=False), rng))
    x_inf = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x_inf[0, 0, 3, 3] = 1.0
    cases.append(case("max_all_minus_inf", "max_pool2d", x_inf, dict(kernel_size=2, stride=1, padding=1, dilation=1,
                                                                      ceil_mode=False), rng))
    cases.append(case("max_float64", "max_pool2d", make_x(rng, (1, 2, 6, 6), dtype=np.float64),
                      dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True), rng))

    # average pooling: kernel x stride x padding x ceil_mode, with (count_include_pad, divisor_override) cycling
    divisors = [(True, None), (False, None), (True, 2), (False, -3)]
    grid = itertools.product([2, 3, [3, 2]], [None, 1, 2], [0, 1], [False, True])
    for k, (kernel, stride, padding, ceil) in enumerate(grid):
        cip, dov = divisors[k % 4]
        kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=cip,
                      divisor_override=dov)
        hw = (int(rng.integers(4, 8)), int(rng.integers(4, 8)))
        if not valid(kwargs, hw):
            continue
        cases.append(case(f"avg_grid{k:02d}", "avg_pool2d", make_x(rng, (1, 2) + hw), kwargs, rng))
    for name, kwargs, hw in [
        ("avg_lenet", dict(kernel_size=2, stride=2, padding=0, ceil_mode=False, count_include_pad=True,
                           divisor_override=None), (8, 8)),
        ("avg_ceil_pad_nocount", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False,
                                      divisor_override=None), (6, 6)),
        ("avg_ceil_pad_count", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True,
                                    divisor_override=None), (6, 6)),
        ("avg_ceil_clipped", dict(kernel_size=[2, 3], stride=[3, 2], padding=[1, 1], ceil_mode=True,
                                  count_include_pad=True, divisor_override=None), (5, 6)),
        ("avg_k1", dict(kernel_size=1, stride=2, padding=0, ceil_mode=True, count_include_pad=True,
                        divisor_override=None), (5, 5)),
    ]:
        cases.append(case(name, "avg_pool2d", make_x(rng, (2, 2) + hw), kwargs, rng))
    cases.append(case("avg_float64", "avg_pool2d", make_x(rng, (1, 2, 6, 5), dtype=np.float64),
                      dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False,
                           divisor_override=None), rng))

    # adaptive pooling: sizes that divide, that don't, and larger than the input (overlapping windows)
    for k, (hw, size) in enumerate([((6, 6), 1), ((5, 7), 1), ((6, 6), 2), ((6, 6), 3), ((5, 7), [2, 3]),
                                    ((5, 7), [3, 5]), ((7, 5), [4, 4]), ((4, 3), [5, 4]), ((3, 3), 7),
                                    ((10, 10), [5, 10])]):
        cases.append(case(f"aavg{k}", "adaptive_avg_pool2d", make_x(rng, (1, 2) + hw), dict(output_size=size), rng))
        cases.append(case(f"amax{k}", "adaptive_max_pool2d", make_x(rng, (1, 2) + hw, ties=k % 2 == 1),
                          dict(output_size=size), rng))
    cases.append(case("aavg_float64", "adaptive_avg_pool2d", make_x(rng, (1, 2, 7, 5), dtype=np.float64),
                      dict(output_size=[3, 2]), rng))

    # 2x2 stride 2 (the CPU's kernel 2) with ties: the first extreme of a window must win, in the indices and
    # in the gradient; its own generator, so the cases above keep their inputs
    rng2 = np.random.default_rng(19)
    lenet = dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    signed_zeros = rng2.choice(np.array([-1.0, -0.0, 0.0, 1.0], np.float32), (2, 2, 6, 8))
    for op in ("max_pool2d", "min_pool2d"):
        cases.append(case(f"{op[:3]}_2x2_ties", op, make_x(rng2, (2, 3, 8, 7), ties=True), lenet, rng2))
        cases.append(case(f"{op[:3]}_2x2_signed_zeros", op, signed_zeros, lenet, rng2))
        flat = np.full((1, 2, 5, 6), 0.5, np.float32)  # one plane all equal, one of two values
        flat[0, 1] = rng2.integers(0, 2, (5, 6))
        cases.append(case(f"{op[:3]}_2x2_flat", op, flat, lenet, rng2))
    cases.append(case("max_2x2_ties_float64", "max_pool2d", make_x(rng2, (1, 2, 6, 6), ties=True, dtype=np.float64),
                      lenet, rng2))

    save_cases(GOLDEN_DIR / "pool.npz", cases)
    print(f"wrote {len(cases)} pooling cases (torch {torch.__version__})")


if __name__ == "__main__":
    main()
