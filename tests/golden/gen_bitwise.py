"""Bit-for-bit baseline of the default CPU kernels: every public op on fixed seeded inputs.

Unlike the other golden files this one is made by numbacnn itself, not PyTorch: it pins the exact bits the
default kernels produced when it was written, so a refactor (moving kernels between modules, renaming
them, adding a dispatch layer) can prove it changed nothing. ``tests/test_bitwise.py`` compares with
``np.array_equal``. The bits of the register-tile kernels depend on the CPU (FMA, vector width), so the
file records the CPU it was made on and the test skips on another one.

    python tests/golden/gen_bitwise.py        # rewrite tests/golden/bitwise.npz (only after a deliberate change)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for golden.format


def cpu_fingerprint() -> str:
    """The host CPU as LLVM sees it: name and features (what decides FMA and vector code)."""
    import llvmlite.binding as llvm

    return f"{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"


def cases():
    """[(name, {field: array})]: every public CPU op with default kernels, forward and backward."""
    import numbacnn as nc

    rng = np.random.default_rng(20261130)
    out = []

    def arr(*shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)

    X, K = arr(6, 8), arr(2, 3)
    out.append(("corr2d", {"y": nc.corr2d(X, K)}))
    # conv: LeNet's two shapes (positions in lanes; channels in lanes), stride, padding, groups, dilation, float64, flip
    conv_cases = [
        ("conv1", (4, 1, 28, 28), (6, 1, 5, 5), dict(padding=2), np.float32),
        ("conv2", (4, 6, 14, 14), (16, 6, 5, 5), {}, np.float32),
        ("conv_wide", (3, 4, 9, 9), (32, 4, 3, 3), dict(padding=1), np.float32),
        ("conv_groups", (2, 6, 9, 7), (12, 3, 3, 2), dict(groups=2, padding=(1, 0), dilation=(1, 2)), np.float32),
        ("conv_stride", (2, 3, 11, 10), (5, 3, 3, 3), dict(stride=2, padding=1), np.float32),
        ("conv_f64", (2, 3, 8, 8), (9, 3, 3, 3), dict(padding="same"), np.float64),
        ("conv_f64_wide", (2, 2, 7, 7), (8, 2, 3, 3), {}, np.float64),
        ("conv_flip", (2, 2, 7, 6), (3, 2, 2, 3), dict(flip=True), np.float32),
    ]
    for name, xs, ws, opts, dt in conv_cases:
        x, w, b = arr(*xs, dtype=dt), arr(*ws, dtype=dt), arr(ws[0], dtype=dt)
        y = nc.conv2d(x, w, b, **opts)
        gx, gw, gb = nc.conv2d_backward(arr(*y.shape, dtype=dt), x, w, b, **opts)
        out.append((name, {"y": y, "gx": gx, "gw": gw, "gb": gb}))
    # pooling: the 2x2 fast paths, general windows, padding, ceil_mode, ties, adaptive
    x = arr(2, 6, 28, 28)
    x[:, :, ::3, ::2] = 0.5  # ties
    for name, f, fb, opts in [
        ("max2x2", nc.max_pool2d, nc.max_pool2d_backward, dict(kernel_size=2)),
        ("min2x2", nc.min_pool2d, nc.min_pool2d_backward, dict(kernel_size=2)),
        ("max3s2p1", nc.max_pool2d, nc.max_pool2d_backward, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ("min_dil", nc.min_pool2d, nc.min_pool2d_backward, dict(kernel_size=2, stride=1, dilation=2)),
    ]:
        y, idx = f(x, return_indices=True, **opts)
        gy = arr(*y.shape)
        out.append((name, {"y": y, "idx": idx, "gx": fb(gy, x, **opts), "gx_idx": fb(gy, x, indices=idx, **opts)}))
    for name, opts in [("avg2x2", dict(kernel_size=2)),
                       ("avg3p1", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
                       ("avg_div", dict(kernel_size=(2, 3), divisor_override=5, ceil_mode=True))]:
        y = nc.avg_pool2d(x, **opts)
        out.append((name, {"y": y, "gx": nc.avg_pool2d_backward(arr(*y.shape), x, **opts)}))
    for size in (1, (5, 3)):
        y = nc.adaptive_avg_pool2d(x, size)
        ym, im = nc.adaptive_max_pool2d(x, size, return_indices=True)
        out.append((f"adaptive{size}", {"avg": y, "gavg": nc.adaptive_avg_pool2d_backward(arr(*y.shape), x, size),
                                        "max": ym, "idx": im,
                                        "gmax": nc.adaptive_max_pool2d_backward(arr(*ym.shape), x, size)}))
    # linear: LeNet's layers (tile path) and a small one
    for name, (n, i, o), dt in [("lin400", (64, 400, 120), np.float32), ("lin120", (64, 120, 84), np.float32),
                                ("lin_small", (5, 7, 3), np.float32), ("lin_f64", (20, 70, 30), np.float64)]:
        xx, w, b = arr(n, i, dtype=dt), arr(o, i, dtype=dt), arr(o, dtype=dt)
        y = nc.linear(xx, w, b)
        gx, gw, gb = nc.linear_backward(arr(n, o, dtype=dt), xx, w, b)
        out.append((name, {"y": y, "gx": gx, "gw": gw, "gb": gb}))
    # elementwise, with extremes
    for dt in (np.float32, np.float64):
        v = arr(2, 6, 14, 14, dtype=dt) * 6
        v.flat[:6] = [0.0, -0.0, 100.0, -100.0, np.inf, -np.inf]
        g = arr(*v.shape, dtype=dt)
        s, t = nc.sigmoid(v), nc.tanh(v)
        out.append((f"elementwise_{np.dtype(dt).name}", {
            "relu": nc.relu(v), "grelu": nc.relu_backward(g, v),
            "sigmoid": s, "gsig": nc.sigmoid_backward(g, v), "gsig_y": nc.sigmoid_backward(g, None, y=s),
            "tanh": t, "gtanh": nc.tanh_backward(g, v), "gtanh_y": nc.tanh_backward(g, None, y=t)}))
    logits, labels = arr(256, 10) * 3, rng.integers(0, 10, 256)
    out.append(("cross_entropy", {"loss": np.asarray(nc.cross_entropy(logits, labels)),
                                  "grad": nc.cross_entropy_backward(1.0, logits, labels)}))
    # SGD: ten steps with every option on
    from numbacnn.optim import sgd

    p, bufs = [arr(16, 6, 5, 5), arr(84)], [None, None]
    for _ in range(10):
        sgd(p, [arr(16, 6, 5, 5), arr(84)], bufs, lr=0.1, momentum=0.9, dampening=0.0, weight_decay=1e-3,
            nesterov=True)
    out.append(("sgd", {"p0": p[0], "p1": p[1], "b0": bufs[0], "b1": bufs[1]}))
    # conv at batch sizes of a tile of examples and more (17: one tile and part of another, 16 float32 lanes;
    # 8 float64): the kernels that put one example in each lane (added last so the cases above keep their inputs)
    for name, xs, ws, opts, dt in [("conv1_batch", (17, 1, 12, 12), (6, 1, 5, 5), dict(padding=2), np.float32),
                                   ("conv2_batch", (17, 6, 9, 9), (16, 6, 5, 5), {}, np.float32),
                                   ("conv_batch_f64", (11, 4, 9, 8), (10, 2, 3, 3), dict(groups=2, padding=1),
                                    np.float64)]:
        x, w, b = arr(*xs, dtype=dt), arr(*ws, dtype=dt), arr(ws[0], dtype=dt)
        y = nc.conv2d(x, w, b, **opts)
        gx, gw, gb = nc.conv2d_backward(arr(*y.shape, dtype=dt), x, w, b, **opts)
        out.append((name, {"y": y, "gx": gx, "gw": gw, "gb": gb}))
    return out


def main():
    from golden.format import GOLDEN_DIR, save_cases

    made = [{"name": name, "options": {}, "arrays": arrays} for name, arrays in cases()]
    made.append({"name": "__cpu__", "options": {}, "arrays": {"fingerprint": np.array(cpu_fingerprint())}})
    save_cases(GOLDEN_DIR / "bitwise.npz", made)
    print(f"wrote {GOLDEN_DIR / 'bitwise.npz'}: {len(made) - 1} cases")


if __name__ == "__main__":
    main()
