"""Every numbered CPU kernel of linear, the activations and cross-entropy against numbacnn.reference, and the fast
kernels (numbacnn.cpu.linear_tiles, numbacnn.cpu.fast_exp) against kernel 1, the formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numbacnn as nc
from numbacnn import reference as ref
from numbacnn.cpu import fast_exp, functional as cpu, linear_tiles, lines
from helpers import assert_close


@settings(max_examples=30, deadline=None)
@given(N=st.integers(0, 9), I=st.integers(1, 13), O=st.integers(1, 11),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_linear_fast_kernels_match_simple(N, I, O, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (O,), (N, O)))
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    y_s, y_f = np.empty((N, O), dtype), np.empty((N, O), dtype)
    cpu.linear_forward_kernel1(x, w, b, y_s)
    linear_tiles.linear_forward_kernel2(x, w, b, y_f)
    assert_close(y_f, y_s, name="y", **tol)
    y_3 = np.full((N, O), np.nan, dtype)  # a tile of examples per call: fewer leave lanes empty
    linear_tiles.linear_forward_kernel3(x, w, b, y_3)
    assert_close(y_3, y_s, name="y (kernel 3)", **tol)
    gx_s, gx_f = np.empty_like(x), np.empty_like(x)
    cpu.linear_grad_input_kernel1(gy, w, gx_s)
    linear_tiles.linear_grad_input_kernel2(gy, w, gx_f)
    assert_close(gx_f, gx_s, name="grad_x", **tol)
    gw_s, gw_f, gb_s, gb_f = np.empty_like(w), np.empty_like(w), np.empty_like(b), np.empty_like(b)
    cpu.linear_grad_weight_kernel1(gy, x, gw_s, gb_s)
    linear_tiles.linear_grad_weight_kernel2(gy, x, gw_f, gb_f)
    assert_close(gw_f, gw_s, name="grad_weight", **tol)
    assert_close(gb_f, gb_s, name="grad_bias", **tol)


@settings(max_examples=40, deadline=None)
@given(N=st.one_of(st.integers(0, 20), st.integers(60, 140)), I=st.integers(1, 40), O=st.integers(1, 20),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_linear_backward_tiles_match_simple(N, I, O, dtype, seed):
    """Shapes that reach the tile kernel (six or more rows of the result, a tile or more of columns), with
    a short last block of rows, a partial last tile of columns and sums over one to three blocks of k."""
    rng = np.random.default_rng(seed)
    x, w, gy = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (N, O)))
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    gx_s, gx_f = np.empty_like(x), np.full_like(x, np.nan)
    cpu.linear_grad_input_kernel1(gy, w, gx_s)
    linear_tiles.linear_grad_input_kernel2(gy, w, gx_f)
    assert_close(gx_f, gx_s, name="grad_x", **tol)
    gw_s, gw_f, gb_s, gb_f = np.empty_like(w), np.full_like(w, np.nan), np.empty(O, dtype), np.empty(O, dtype)
    cpu.linear_grad_weight_kernel1(gy, x, gw_s, gb_s)
    linear_tiles.linear_grad_weight_kernel2(gy, x, gw_f, gb_f)
    assert_close(gw_f, gw_s, name="grad_weight", **tol)


@settings(max_examples=30, deadline=None)
@given(N=st.integers(14, 40), I=st.integers(1, 150), O=st.integers(1, 30),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_linear_forward_kernel3_matches_simple(N, I, O, dtype, seed):
    """Whole and partial tiles of examples (16 float32, 8 float64), blocks of six features with a short last one
    (and fewer than six), one to three blocks of k."""
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (O,)))
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    y_s, y_3 = np.empty((N, O), dtype), np.full((N, O), np.nan, dtype)
    cpu.linear_forward_kernel1(x, w, b, y_s)
    linear_tiles.linear_forward_kernel3(x, w, b, y_3)
    assert_close(y_3, y_s, name="y (kernel 3)", **tol)


def test_linear_picks_kernel3_for_a_tile_of_examples(monkeypatch):
    called = []
    for name in ("linear_forward_kernel2", "linear_forward_kernel3"):
        real = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, _real=real, _name=name: called.append(_name) or _real(*a))
    for n, dtype in ((15, np.float32), (16, np.float32), (7, np.float64), (8, np.float64)):
        nc.linear(np.ones((n, 3), dtype), np.ones((10, 3), dtype))
    assert called == ["linear_forward_kernel2", "linear_forward_kernel3"] * 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_fast_exp_matches_libm(dtype):
    """The vectorized exp gives the same sigmoid as math.exp within three ulps, special values included.

    (In float32, math.exp(-x) overflows for x < -88.7 so the simple kernel gives 0 where the fast one keeps
    the exact subnormal value, below the smallest normal float32.)"""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4000) * 10, rng.uniform(-800, 800, 1000), np.linspace(-40, 40, 1001),
                        [0.0, -0.0, 1e-30, -1e-30, 88.7, -88.7, 103.9, -103.9, 708.5, -708.5, 745.2, -745.2, 1e30,
                         -1e30, np.inf, -np.inf, np.nan]]).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    a, e = np.empty_like(x), np.empty_like(x)
    fast_exp.sigmoid_forward_kernel2(x, a)
    cpu.sigmoid_forward_kernel1(x, e)
    ulp = np.spacing(np.abs(e).astype(dtype))
    assert np.array_equal(np.isnan(a), np.isnan(e))
    ok = np.isnan(e) | (np.abs(a.astype(np.float64) - e) <= np.maximum(3 * ulp, np.finfo(dtype).tiny))
    assert ok.all(), f"sigmoid: {x[~ok][:5]} -> {a[~ok][:5]}, expected {e[~ok][:5]}"
    # backward against the exact derivative, exp(-|x|) / (1 + exp(-|x|))**2 in float64 (the simple kernel
    # loses digits in s * (1 - s) where s is near 1; the fast one does not)
    fast_exp.sigmoid_backward_kernel2(gy, x, a)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x.astype(np.float64)))
        exact = gy * e / (1 + e) ** 2
    assert_close(a, exact, atol=1e-37, rtol=1e-6 if dtype == np.float32 else 1e-12, name="sigmoid_backward")



@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 9), K=st.integers(1, 12), scale=st.sampled_from([0.1, 1.0, 30.0]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_cross_entropy_fast_kernel_matches_simple(N, K, scale, dtype, seed):
    """Kernel 2 (label check fused in, vectorized exp) against kernel 1, the two-pass formula."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, K)) * scale).astype(dtype)
    t = rng.integers(0, K, N)
    fast = fast_exp.cross_entropy_forward_kernel2
    loss, bad = fast(logits, t)
    assert bad == -1
    assert_close(loss, cpu.cross_entropy_forward_kernel1(logits, t), atol=1e-6 if dtype == np.float32 else 1e-13,
                 rtol=1e-6 if dtype == np.float32 else 1e-13, name="loss")
    t2 = t.copy()
    t2[N // 2:] = K  # out of range from row N // 2 on: the first bad row is reported
    assert fast(logits, t2)[1] == N // 2
    assert np.isnan(cpu.cross_entropy_forward_kernel1(logits, t2))  # kernel 1: NaN for a bad label


# ---------------------------------------------------------------- every kernel number against numbacnn.reference

def _tol(dtype):
    return dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)


def test_every_op_lists_its_kernels():
    assert sorted(cpu.KERNELS) == sorted(["linear", "linear_backward", "relu", "relu_backward", "sigmoid",
                                          "sigmoid_backward", "tanh", "tanh_backward", "cross_entropy",
                                          "cross_entropy_backward"])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 3, 2), (5, 7, 3), (9, 40, 20), (70, 13, 17)])  # the last two reach the tiles
@pytest.mark.parametrize("kernel", cpu.KERNELS["linear"])
def test_linear_kernel_matches_reference(kernel, shape, dtype, bias):
    N, I, O = shape
    rng = np.random.default_rng(kernel * 100 + N)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (O,), (N, O)))
    b = b if bias else None
    f64 = [None if a is None else a.astype(np.float64) for a in (x, w, b, gy)]
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == np.float32 else _tol(dtype)
    y = nc.linear(x, w, b, kernel=kernel)
    assert y.dtype == dtype
    assert_close(y, ref.linear(*f64[:3]), name=f"kernel {kernel} y", **tol)
    if kernel not in cpu.KERNELS["linear_backward"]:  # a forward-only kernel (3)
        with pytest.raises(ValueError, match=f"for linear_backward, got {kernel}"):
            nc.linear_backward(gy, x, w, b, kernel=kernel)
        return
    got = nc.linear_backward(gy, x, w, b, kernel=kernel)
    want = ref.linear_backward(f64[3], *f64[:3])
    for name, g, e in zip(("grad_x", "grad_weight", "grad_bias"), got, want):
        if e is None:
            assert g is None
        else:
            assert g.dtype == dtype
            assert_close(g, e, name=f"kernel {kernel} {name}", **tol)


ACTIVATIONS = [(op, k) for op in ("relu", "sigmoid", "tanh") for k in cpu.KERNELS[op]]
BACKWARDS = [(op, k) for op in ("relu", "sigmoid", "tanh") for k in cpu.KERNELS[f"{op}_backward"]]


def _activation_input(dtype):
    x = (np.random.default_rng(4).standard_normal((2, 3, 5)) * 4).astype(dtype)
    x.flat[:4] = [0.0, 30.0, -30.0, -0.0]  # relu at 0, saturated sigmoid / tanh
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,kernel", ACTIVATIONS)
def test_activation_kernel_matches_reference(op, kernel, dtype):
    x = _activation_input(dtype)
    y = getattr(nc, op)(x, kernel=kernel)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, getattr(ref, op)(x.astype(np.float64)), name=f"{op} kernel {kernel}", **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,kernel", BACKWARDS)
def test_activation_backward_kernel_matches_reference(op, kernel, dtype):
    x = _activation_input(dtype)
    gy = np.random.default_rng(5).standard_normal(x.shape).astype(dtype)
    x64, gy64 = x.astype(np.float64), gy.astype(np.float64)
    bwd, want = getattr(nc, f"{op}_backward"), getattr(ref, f"{op}_backward")(gy64, x64)
    assert_close(bwd(gy, x, kernel=kernel), want, name=f"{op}_backward kernel {kernel}", **_tol(dtype))
    if op == "relu":
        return
    y = getattr(nc, op)(x)
    if kernel == 2:  # kernel 2 computes the activation again from x: y= (no exp to compute) is kernel 1's
        with pytest.raises(ValueError, match=f"kernel 2 of {op}_backward .* got y=.* kernel 1 takes y="):
            bwd(gy, None, y=y, kernel=kernel)
        return
    got = bwd(gy, None, y=y, kernel=kernel)
    assert_close(got, getattr(ref, f"{op}_backward")(gy64, x64, y=y.astype(np.float64)),
                 name=f"{op}_backward y= kernel {kernel}", **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [cpu.ONE_THREAD_BELOW - 1, cpu.ONE_THREAD_BELOW, 64 * 64 + 5])  # 4101: a tail after 64 runs
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_relu_kernels_agree_bit_for_bit(size, offset, dtype):
    """relu's three forms give the same bits, NaN and -0.0 included, and the reference's values: kernel 1 on the
    threads, kernel 1 on one thread (small arrays) and kernel 2 (whole cache lines, its output at x's offset in a
    page), for x starting ``offset`` elements into a line-aligned buffer."""
    rng = np.random.default_rng(8)
    line = 64 // np.dtype(dtype).itemsize
    buf, gbuf = (rng.standard_normal(size + 2 * line) * 4).astype(dtype), rng.standard_normal(size).astype(dtype)
    start = (-buf.ctypes.data % 64) // buf.itemsize + offset
    x, gy = buf[start:start + size], gbuf
    x[:4] = [np.nan, -0.0, 0.0, -np.inf]
    forms = [(cpu.relu_forward_kernel1, cpu.relu_forward_one_thread_kernel1, lines.relu_forward_kernel2, (x,)),
             (cpu.relu_backward_kernel1, cpu.relu_backward_one_thread_kernel1, lines.relu_backward_kernel2, (gy, x))]
    for threaded, one_thread, in_lines, args in forms:
        a, b = np.empty_like(x), np.empty_like(x)
        threaded(*args, a)
        one_thread(*args, b)
        c = in_lines(*args)  # kernel 2 makes its output
        assert (c.ctypes.data - x.ctypes.data) % 4096 == 0  # x's offset in a page, so in a line
        assert a.tobytes() == b.tobytes() == c.tobytes(), threaded.py_func.__name__
        c3 = in_lines(*(v.reshape(1, -1, 1) for v in args))  # any shape: the output takes x's
        assert c3.shape == (1, size, 1) and c3.tobytes() == c.tobytes()
        back = in_lines(*(v[::-1] for v in args))  # not contiguous: kernel 2 reads a flat copy
        assert back.tobytes() == c[::-1].tobytes()
    for kernel in (None, 1, 2):  # the public ops, through the launchers' size rule
        y, gx = nc.relu(x, kernel=kernel), nc.relu_backward(gy, x, kernel=kernel)
        assert np.array_equal(y, ref.relu(x), equal_nan=True) and np.signbit(y[1])  # -0.0 stays, as in PyTorch
        assert np.array_equal(gx, ref.relu_backward(gy, x), equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", cpu.KERNELS["cross_entropy"])
def test_cross_entropy_kernel_matches_reference(kernel, dtype):
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal((7, 5)) * 10).astype(dtype)
    t = rng.integers(0, 5, 7)
    loss = nc.cross_entropy(logits, t, kernel=kernel)
    assert loss.dtype == dtype
    assert_close(loss, ref.cross_entropy(logits.astype(np.float64), t), name=f"loss kernel {kernel}", **_tol(dtype))
    with pytest.raises(ValueError, match=r"target has label 5 out of range \[0, 5\)"):
        nc.cross_entropy(logits, np.where(np.arange(7) == 3, 5, t), kernel=kernel)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", cpu.KERNELS["cross_entropy_backward"])
def test_cross_entropy_backward_kernel_matches_reference(kernel, dtype):
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((7, 5)) * 10).astype(dtype)
    t = rng.integers(0, 5, 7)
    g = nc.cross_entropy_backward(0.5, logits, t, kernel=kernel)
    assert g.dtype == dtype
    assert_close(g, ref.cross_entropy_backward(0.5, logits.astype(np.float64), t), name=f"kernel {kernel}",
                 **_tol(dtype))


@pytest.mark.parametrize("op", sorted(cpu.KERNELS))
def test_kernel_numbers_are_checked(op):
    args = {"linear": (np.ones((2, 3)), np.ones((4, 3))), "linear_backward": (np.ones((2, 4)), np.ones((2, 3)),
                                                                             np.ones((4, 3))),
            "cross_entropy": (np.ones((2, 3)), [0, 1]), "cross_entropy_backward": (1.0, np.ones((2, 3)), [0, 1])}
    call = args.get(op, (np.ones(3),) if not op.endswith("_backward") else (np.ones(3), np.ones(3)))
    with pytest.raises(ValueError, match=f"kernel must be None .* for {op}, got 9"):
        getattr(nc, op)(*call, kernel=9)
    with nc.formula_kernels():  # kernel None means 1: the same numbers as kernel=1
        a = getattr(nc, op)(*call)
    b = getattr(nc, op)(*call, kernel=1)
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert (u is None and v is None) or np.array_equal(u, v)
