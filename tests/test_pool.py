"""Pooling: golden files, the book's numbers, finite differences, live PyTorch parity, bad input."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import numbacnn as nc
from numbacnn import pool as pool_mod
from numbacnn import reference as ref
from numbacnn.geometry import PoolGeometry, pool_geometry
from golden.format import load_cases
from helpers import HAS_TORCH, assert_close

CASES = load_cases("pool")
WITH_INDICES = ("max_pool2d", "min_pool2d", "adaptive_max_pool2d")
EXACT = dict(atol=0, rtol=0)


def _call(impl, op, a, kwargs):
    """(y, indices or None, grad_x) of one implementation (numbacnn or numbacnn.reference) on a golden case."""
    fwd, bwd = getattr(impl, op), getattr(impl, op + "_backward")
    if op in WITH_INDICES:
        y, idx = fwd(a["x"], **kwargs, return_indices=True)
    else:
        y, idx = fwd(a["x"], **kwargs), None
    return y, idx, bwd(a["grad_out"], a["x"], **kwargs)


def _global(op, kwargs):
    """torch computes 1x1 adaptive average pooling with mean(): same value, another summation order."""
    return op == "adaptive_avg_pool2d" and kwargs["output_size"] in (1, [1, 1])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # assert_close on -inf == -inf
@pytest.mark.parametrize("name,opts,a", CASES, ids=[c[0] for c in CASES])
def test_kernels_match_golden(name, opts, a):
    """The Numba kernels give PyTorch's numbers bit for bit (indices and ties included)."""
    op, kwargs = opts["op"], opts["kwargs"]
    y, idx, gx = _call(nc, op, a, kwargs)
    tol = dict(atol=1e-7, rtol=1e-6) if _global(op, kwargs) else EXACT
    assert y.dtype == a["x"].dtype and gx.dtype == a["x"].dtype
    assert_close(y, a["y"], name=f"{name} y", **tol)
    assert_close(gx, a["grad_x"], name=f"{name} grad_x", **tol)
    if op in WITH_INDICES:
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(idx, a["indices"], err_msg=f"{name} indices")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # assert_close on -inf == -inf
@pytest.mark.parametrize("name,opts,a", CASES, ids=[c[0] for c in CASES])
def test_reference_matches_golden(name, opts, a):
    op, kwargs = opts["op"], opts["kwargs"]
    y, idx, gx = _call(ref, op, a, kwargs)
    assert_close(y, a["y"], atol=1e-6, rtol=1e-6, name=f"{name} y")
    assert_close(gx, a["grad_x"], atol=1e-6, rtol=1e-6, name=f"{name} grad_x")
    if op in WITH_INDICES:
        np.testing.assert_array_equal(idx, a["indices"], err_msg=f"{name} indices")


TWO_BY_TWO_TIES = [c for c in CASES if "_2x2_" in c[0]]


@pytest.mark.parametrize("name,opts,a", TWO_BY_TWO_TIES, ids=[c[0] for c in TWO_BY_TWO_TIES])
def test_2x2_ties_match_golden_bit_for_bit(name, opts, a):
    """2x2 stride 2 with ties (and -0.0 beside 0.0) on every kernel number: PyTorch's winner, to the bit."""
    from numbacnn.cpu.pool import KERNELS

    op, kwargs = opts["op"], opts["kwargs"]
    bits = lambda v: np.asarray(v).view(np.uint8)  # noqa: E731  (-0.0 and 0.0 differ)
    for kernel in KERNELS[op]:
        y, idx = getattr(nc, op)(a["x"], **kwargs, return_indices=True, kernel=kernel)
        np.testing.assert_array_equal(idx, a["indices"], err_msg=f"{name} indices, kernel {kernel}")
        np.testing.assert_array_equal(bits(y), bits(a["y"]), err_msg=f"{name} y, kernel {kernel}")
        gx = getattr(nc, op + "_backward")(a["grad_out"], a["x"], **kwargs, kernel=kernel)
        if op == "min_pool2d":  # torch's min is -max(-x): its gradient's zeros are -0.0, only the values count
            assert_close(gx, a["grad_x"], name=f"{name} grad_x, kernel {kernel}", **EXACT)
        else:
            np.testing.assert_array_equal(bits(gx), bits(a["grad_x"]), err_msg=f"{name} grad_x, kernel {kernel}")


def test_golden_covers_the_options():
    ops = {o["op"] for _, o, _ in CASES}
    assert ops == {"max_pool2d", "min_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
    kw = [o["kwargs"] for _, o, _ in CASES]
    assert any(k.get("ceil_mode") for k in kw) and any(k.get("dilation") not in (None, 1) for k in kw)
    assert any(k.get("count_include_pad") is False for k in kw) and any(k.get("divisor_override") for k in kw)
    ties = [a for _, o, a in CASES if o["op"] in WITH_INDICES and len(np.unique(a["x"])) < a["x"].size // 2]
    assert len(ties) >= 5
    lenet = dict(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    ties_2x2 = {o["op"] for _, o, a in CASES if o["kwargs"] == lenet and len(np.unique(a["x"])) < a["x"].size // 2}
    assert ties_2x2 == {"max_pool2d", "min_pool2d"}  # the fast 2x2 kernels meet ties too


# ---------------------------------------------------------------- the book's own numbers (D2L 6.5)

def test_book_pool2d():
    X = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(ref.pool2d(X, (2, 2)), [[4, 5], [7, 8]])
    np.testing.assert_array_equal(ref.pool2d(X, (2, 2), "avg"), [[2, 3], [5, 6]])
    X4 = X.reshape(1, 1, 3, 3)
    for impl in (nc, ref):
        np.testing.assert_array_equal(impl.max_pool2d(X4, 2, stride=1)[0, 0], [[4, 5], [7, 8]])
        np.testing.assert_array_equal(impl.avg_pool2d(X4, 2, stride=1)[0, 0], [[2, 3], [5, 6]])


def test_book_padding_and_stride():
    X = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    for impl in (nc, ref):
        np.testing.assert_array_equal(impl.max_pool2d(X, 3)[0, 0], [[10]])  # stride defaults to the window
        np.testing.assert_array_equal(impl.max_pool2d(X, 3, padding=1, stride=2)[0, 0], [[5, 7], [13, 15]])
        np.testing.assert_array_equal(impl.max_pool2d(X, (2, 3), stride=(2, 3), padding=(0, 1))[0, 0],
                                      [[5, 7], [13, 15]])


def test_book_multiple_channels():
    """Pooling works on each channel separately (D2L 6.5.4): channels in = channels out."""
    X = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    X2 = np.concatenate([X, X + 1], axis=1)
    y = nc.max_pool2d(X2, 3, padding=1, stride=2)
    np.testing.assert_array_equal(y, [[[[5, 7], [13, 15]], [[6, 8], [14, 16]]]])


def test_ties_first_maximum_and_min():
    x = np.array([[[[1, 3, 3], [3, 0, 0], [0, 0, 0]]]], np.float32)
    for impl in (nc, ref):
        y, idx = impl.max_pool2d(x, 2, stride=1, return_indices=True)
        np.testing.assert_array_equal(idx[0, 0], [[1, 1], [3, 4]])
        np.testing.assert_array_equal(y[0, 0], [[3, 3], [3, 0]])
        y, idx = impl.min_pool2d(x, 2, stride=1, return_indices=True)
        np.testing.assert_array_equal(idx[0, 0], [[4, 4], [4, 4]])
        np.testing.assert_array_equal(y[0, 0], [[0, 0], [0, 0]])
        g = impl.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), x, 2, stride=1)
        np.testing.assert_array_equal(g[0, 0], [[0, 2, 0], [1, 1, 0], [0, 0, 0]])


def test_min_pool_is_negated_max_pool():
    x = np.random.default_rng(1).integers(0, 4, (2, 3, 6, 7)).astype(np.float32)
    opts = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True)
    y, i = nc.min_pool2d(x, **opts, return_indices=True)
    y2, i2 = nc.max_pool2d(-x, **opts, return_indices=True)
    np.testing.assert_array_equal(y, -y2)
    np.testing.assert_array_equal(i, i2)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(nc.min_pool2d_backward(g, x, **opts), nc.max_pool2d_backward(g, -x, **opts))


def test_global_pooling_and_dtypes():
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 4))
    assert_close(nc.adaptive_avg_pool2d(x, 1)[..., 0, 0], x.mean(axis=(2, 3)), atol=1e-12, rtol=1e-12)
    np.testing.assert_array_equal(nc.adaptive_max_pool2d(x, (1, 1))[..., 0, 0], x.max(axis=(2, 3)))
    assert nc.max_pool2d(x, 2).dtype == np.float64
    assert nc.avg_pool2d(np.ones((1, 1, 4, 4), np.int64), 2).dtype == np.float32
    assert nc.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 5, 2)
    view = x.transpose(0, 1, 3, 2)[:, ::2]  # any strides: copied to a contiguous array first
    np.testing.assert_array_equal(nc.max_pool2d(view, 2), ref.max_pool2d(np.ascontiguousarray(view), 2))


def test_lenet_shapes_match_reference():
    """The shapes LeNet pools (2x2, stride 2) on a small batch, against the NumPy reference."""
    rng = np.random.default_rng(4)
    for shape in [(3, 6, 28, 28), (3, 16, 10, 10)]:
        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
        for op in ("max_pool2d", "avg_pool2d"):
            assert_close(getattr(nc, op)(x, 2, 2), getattr(ref, op)(x, 2, 2), atol=1e-6, rtol=1e-6, name=op)
            assert_close(getattr(nc, op + "_backward")(g, x, 2, 2), getattr(ref, op + "_backward")(g, x, 2, 2),
                         atol=1e-6, rtol=1e-6, name=op + "_backward")


def test_geometry_for_the_cuda_version():
    geo = pool_geometry((2, 3, 7, 6), 3, None, 1, (1, 2), True)
    assert isinstance(geo, PoolGeometry)
    assert (geo.kernel, geo.stride, geo.padding, geo.dilation, geo.ceil_mode) == ((3, 3), (3, 3), (1, 1), (1, 2), True)
    assert geo.out_hw == (3, 2)
    with pytest.raises(AttributeError):
        geo.kernel = (2, 2)


def test_public_layer_hands_checked_arguments_to_the_target(monkeypatch):
    """Each op validates once and calls its target's launcher with checked arrays, the geometry and the options;
    device= (or the deprecated target=) picks the target module."""
    from numbacnn import _checks
    from numbacnn.cpu.pool import KERNELS

    calls, devices = [], []

    class FakeTarget:
        def __getattr__(self, name):
            return lambda *args, **kwargs: calls.append((name, args, kwargs)) or (args[0], args[0])

    FakeTarget.KERNELS = KERNELS
    monkeypatch.setattr(pool_mod, "implementation", lambda device, family: devices.append((device, family))
                        or FakeTarget())
    x = np.arange(60.0).reshape(1, 2, 6, 5)  # float64 stays float64
    g = lambda *hw: np.ones((1, 2) + hw, np.int64)  # noqa: E731  (converted to x's dtype)
    geo = lambda *a: pool_geometry(x.shape, *a)  # noqa: E731
    nc.max_pool2d(x, 2, 1, 0, 1, True, True, kernel=1)
    assert calls[-1][0] == "max_pool2d" and calls[-1][1][1:] == (geo(2, 1, 0, 1, True), 1.0)
    assert calls[-1][2] == {"kernel": 1} and calls[-1][1][0].dtype == np.float64
    nc.min_pool2d(x, 3)
    assert calls[-1][1][1:] == (geo(3), -1.0) and calls[-1][2] == {"kernel": None}
    nc.max_pool2d_backward(g(3, 2), x, 2, indices=np.zeros((1, 2, 3, 2), np.int32))
    name, (gy, xx, got, idx, sign), _ = calls[-1]
    assert (name, got, sign, idx.dtype, gy.dtype, gy.flags.c_contiguous) == \
        ("max_pool2d_backward", geo(2), 1.0, np.int64, np.float64, True)
    nc.min_pool2d_backward(g(2, 1), x, 3)
    assert calls[-1][0] == "max_pool2d_backward" and calls[-1][1][2:] == (geo(3), None, -1.0)
    nc.avg_pool2d(x, 2, count_include_pad=False, divisor_override=3)
    assert calls[-1][0] == "avg_pool2d" and calls[-1][1][1:] == (geo(2, None, 0, 1), False, 3)
    nc.avg_pool2d_backward(g(3, 2), x, 2)
    assert calls[-1][0] == "avg_pool2d_backward" and calls[-1][1][2:] == (geo(2), True, 0)
    nc.adaptive_avg_pool2d(x, (2, None))
    assert calls[-1][0] == "adaptive_avg_pool2d" and calls[-1][1][1:] == ((2, 5),)
    nc.adaptive_avg_pool2d_backward(g(2, 3), x, (2, 3))
    assert calls[-1][0] == "adaptive_avg_pool2d_backward" and calls[-1][1][0].shape == (1, 2, 2, 3)
    assert nc.adaptive_max_pool2d(x, 1, True)[0] is calls[-1][1][0]
    nc.adaptive_max_pool2d_backward(g(1, 1), x, 1)
    assert calls[-1][0] == "adaptive_max_pool2d_backward"
    with nc.formula_kernels():
        nc.avg_pool2d(x, 2)
    assert calls[-1][2] == {"kernel": 1}
    assert set(devices) == {("cpu", "pool")}
    cpu_floats = lambda device, *specs: _checks.float_arrays("cpu", *specs)  # noqa: E731  (no GPU needed)
    monkeypatch.setattr(pool_mod, "float_arrays", cpu_floats)
    nc.max_pool2d(x, 2, device="cuda")
    with pytest.warns(DeprecationWarning, match="use device="):
        nc.avg_pool2d(x, 2, target="cuda")
    assert devices[-2:] == [("cuda", "pool")] * 2


# ---------------------------------------------------------------- finite differences (float64)

def _distinct(rng, shape):
    """float64 values at least 0.01 apart: no ties, so the winners don't move under the small nudges."""
    return (rng.permutation(int(np.prod(shape))) * 0.01 - 0.3).reshape(shape) + rng.uniform(0, 1e-3)


FD_CASES = [
    ("max_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("max_pool2d", dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1), ceil_mode=True)),
    ("min_pool2d", dict(kernel_size=2, stride=1, padding=1)),
    ("min_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=(2, 3), stride=2, padding=1, ceil_mode=True, divisor_override=4)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", dict(output_size=1)),
    ("adaptive_max_pool2d", dict(output_size=(4, 2))),
]


@pytest.mark.parametrize("op,kwargs", FD_CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(FD_CASES)])
def test_finite_differences(op, kwargs):
    rng = np.random.default_rng(5)
    x = _distinct(rng, (1, 2, 5, 6))
    fwd = getattr(nc, op)
    g = rng.standard_normal(fwd(x, **kwargs).shape)
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + 1e-6
        up = (fwd(x, **kwargs) * g).sum()
        x[idx] = old - 1e-6
        down = (fwd(x, **kwargs) * g).sum()
        x[idx] = old
        num[idx] = (up - down) / 2e-6
    for impl in (nc, ref):
        grad = getattr(impl, op + "_backward")(g, x, **kwargs)
        assert_close(grad, num, atol=1e-6, rtol=1e-6, name=f"{impl.__name__}.{op}_backward")


# ---------------------------------------------------------------- live PyTorch parity (hypothesis)

@st.composite
def pool_problems(draw):
    op = draw(st.sampled_from(["max_pool2d", "min_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                               "adaptive_max_pool2d"]))
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if op.startswith("adaptive"):
        kwargs = dict(output_size=(draw(st.integers(1, 10)), draw(st.integers(1, 10))))
    else:
        k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        kwargs = dict(kernel_size=k, stride=draw(st.sampled_from([None, 1, 2, (1, 3), (2, 1)])),
                      padding=(draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))),
                      ceil_mode=draw(st.booleans()))
        if op == "avg_pool2d":
            kwargs.update(count_include_pad=draw(st.booleans()),
                          divisor_override=draw(st.sampled_from([None, None, 1, 3, -2])))
        else:
            kwargs.update(dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 2))))
    return dict(op=op, kwargs=kwargs, shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W),
                ties=draw(st.booleans()), float64=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@pytest.mark.skipif(not HAS_TORCH, reason="live parity needs torch")
@settings(max_examples=40, deadline=None)
@given(pool_problems())
def test_live_parity_with_torch(p):
    import torch
    import torch.nn.functional as F

    op, kwargs = p["op"], p["kwargs"]
    rng = np.random.default_rng(p["seed"])
    dtype = np.float64 if p["float64"] else np.float32
    x = (rng.integers(0, 3, p["shape"]) if p["ties"] else rng.standard_normal(p["shape"])).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    try:
        if op == "min_pool2d":
            ty, ti = F.max_pool2d(-tx, **kwargs, return_indices=True)
            ty = -ty
        elif op in WITH_INDICES:
            ty, ti = getattr(F, op)(tx, **kwargs, return_indices=True)
        else:
            ty, ti = getattr(F, op)(tx, **kwargs), None
    except RuntimeError:  # torch refuses these options: so must we
        with pytest.raises(ValueError):
            getattr(nc, op)(x, **kwargs)
        assume(False)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    tol = dict(atol=1e-6, rtol=1e-6) if op == "adaptive_avg_pool2d" and kwargs["output_size"] == (1, 1) else EXACT
    if ti is not None:
        y, idx = getattr(nc, op)(x, **kwargs, return_indices=True)
        np.testing.assert_array_equal(idx, ti.numpy())
    else:
        y = getattr(nc, op)(x, **kwargs)
    assert_close(y, ty.detach().numpy(), name="y", **tol)
    if ti is not None and (ti.numpy() >= p["shape"][2] * p["shape"][3]).any():
        # A window that saw only padding (possible with dilation) gets torch's index of the first
        # tap it would read, which lies outside the plane; torch's CPU backward then adds that
        # gradient into the next channel's plane, or past the end of the tensor for the last one
        # (it aborted this test process once): torch's backward is not run here. numbacnn routes it
        # nowhere: see test_all_padding_window_routes_no_gradient.
        return
    ty.backward(torch.tensor(gy))
    assert_close(getattr(nc, op + "_backward")(gy, x, **kwargs), tx.grad.numpy(), name="grad_x", **tol)
    if op in ("max_pool2d", "min_pool2d"):  # torch's own indices, PyTorch's way
        assert_close(getattr(nc, op + "_backward")(gy, x, **kwargs, indices=ti.numpy()), tx.grad.numpy(),
                     name="grad_x from indices", **tol)


@pytest.mark.parametrize("op", ["max_pool2d", "min_pool2d"])
def test_all_padding_window_routes_no_gradient(op):
    """kernel (1, 2), dilation 2, padding 1 on a 1x1 plane: the only window reads columns -1 and 1."""
    x = np.array([[[[0.5]], [[-0.25]]]], np.float32)
    opts = dict(kernel_size=(1, 2), padding=(0, 1), dilation=(1, 2))
    y, idx = getattr(nc, op)(x, **opts, return_indices=True)
    assert np.isinf(y).all() and (idx == 1).all()  # PyTorch's value and index (index 1 is off the 1x1 plane)
    gx = getattr(nc, op + "_backward")(np.ones_like(y), x, **opts)
    np.testing.assert_array_equal(gx, np.zeros_like(x))
    for impl in (nc, ref):  # the same with the forward's indices: the off-plane index routes nothing
        gx = getattr(impl, op + "_backward")(np.ones_like(y), x, **opts, indices=idx)
        np.testing.assert_array_equal(gx, np.zeros_like(x))


# ---------------------------------------------------------------- backward with the forward's indices

MAX_MIN_CASES = [c for c in CASES if c[1]["op"] in ("max_pool2d", "min_pool2d")]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("name,opts,a", MAX_MIN_CASES, ids=[c[0] for c in MAX_MIN_CASES])
def test_backward_with_indices_matches_golden(name, opts, a):
    """indices= (the forward's winners) gives the x-based backward's numbers, and PyTorch's, bit for bit."""
    op, kwargs = opts["op"], opts["kwargs"]
    _, idx = getattr(nc, op)(a["x"], **kwargs, return_indices=True)
    gx = getattr(nc, op + "_backward")(a["grad_out"], a["x"], **kwargs, indices=idx)
    assert gx.dtype == a["x"].dtype
    assert_close(gx, a["grad_x"], name=f"{name} grad_x", **EXACT)
    assert_close(gx, getattr(nc, op + "_backward")(a["grad_out"], a["x"], **kwargs), name=f"{name} vs x", **EXACT)
    gr = getattr(ref, op + "_backward")(a["grad_out"], a["x"], **kwargs, indices=a["indices"])
    assert_close(gr, a["grad_x"], atol=1e-6, rtol=1e-6, name=f"{name} reference")


@pytest.mark.parametrize("op", ["max_pool2d", "min_pool2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_with_indices_lenet_and_overlap(op, dtype):
    """The 2x2 fast path and overlapping windows (stride 1: one winner may collect several gradients)."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (3, 4, 10, 9)).astype(dtype)  # ties
    for kwargs in (dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=1, padding=1)):
        y, idx = getattr(nc, op)(x, **kwargs, return_indices=True)
        gy = rng.standard_normal(y.shape).astype(dtype)
        expected = getattr(nc, op + "_backward")(gy, x, **kwargs)
        for i in (idx, idx.astype(np.int32)):
            assert_close(getattr(nc, op + "_backward")(gy, x, **kwargs, indices=i), expected, **EXACT)


@pytest.mark.parametrize("indices,exc,words", [
    (np.zeros((1, 2, 2, 2)), TypeError, ["indices", "integer", "float64"]),
    (np.zeros((1, 2, 2, 3), np.int64), ValueError, ["indices", "(1, 2, 2, 2)", "(1, 2, 2, 3)"]),
    (np.zeros((2, 2), np.int64), ValueError, ["indices", "(1, 2, 2, 2)", "(2, 2)"]),
    (type("DeviceArray", (), {"__cuda_array_interface__": {}})(), TypeError, ["indices", "CUDA device array"]),
])
@pytest.mark.parametrize("fn", [nc.max_pool2d_backward, nc.min_pool2d_backward])
def test_backward_bad_indices(fn, indices, exc, words):
    with pytest.raises(exc) as info:
        fn(np.zeros((1, 2, 2, 2), np.float32), X4, 2, indices=indices)
    for w in words:
        assert w in str(info.value), f"{w!r} not in {str(info.value)!r}"


# ---------------------------------------------------------------- bad input

X4 = np.zeros((1, 2, 5, 5), np.float32)


@pytest.mark.parametrize("fn,args,kwargs,exc,words", [
    (nc.max_pool2d, (np.zeros((2, 5, 5)), 2), {}, ValueError, ["x", "4 dimensions", "3"]),
    (nc.avg_pool2d, (np.zeros(5), 2), {}, ValueError, ["x", "4 dimensions", "1"]),
    (nc.adaptive_avg_pool2d, (np.zeros((5, 5)), 2), {}, ValueError, ["x", "4 dimensions", "2"]),
    (nc.max_pool2d, (X4.astype(complex), 2), {}, TypeError, ["x", "complex"]),
    (nc.max_pool2d, (X4, 0), {}, ValueError, ["kernel_size", "positive", "0"]),
    (nc.avg_pool2d, (X4, (2, -1)), {}, ValueError, ["kernel_size", "(2, -1)"]),
    (nc.max_pool2d, (X4, 2.5), {}, ValueError, ["kernel_size", "2.5"]),
    (nc.max_pool2d, (X4, 2), dict(stride=0), ValueError, ["stride", "positive", "0"]),
    (nc.avg_pool2d, (X4, 2), dict(stride=(1, -2)), ValueError, ["stride", "(1, -2)"]),
    (nc.max_pool2d, (X4, 2), dict(dilation=0), ValueError, ["dilation", "positive", "0"]),
    (nc.max_pool2d, (X4, 2), dict(padding=-1), ValueError, ["padding", "-1"]),
    (nc.max_pool2d, (X4, 2), dict(padding=2), ValueError, ["padding", "half", "kernel_size", "2"]),
    (nc.avg_pool2d, (X4, (3, 2)), dict(padding=(1, 2)), ValueError, ["padding", "(1, 2)", "half", "(3, 2)"]),
    (nc.max_pool2d, (X4, 6), {}, ValueError, ["output size", "0x0", "kernel_size=6"]),
    (nc.max_pool2d, (X4, 3), dict(dilation=3), ValueError, ["output size", "dilation=3"]),
    (nc.max_pool2d, (X4, 2), dict(ceil_mode="yes"), TypeError, ["ceil_mode", "'yes'"]),
    (nc.max_pool2d, (X4, 2), dict(return_indices=1), TypeError, ["return_indices", "1"]),
    (nc.avg_pool2d, (X4, 2), dict(count_include_pad=None), TypeError, ["count_include_pad", "None"]),
    (nc.avg_pool2d, (X4, 2), dict(divisor_override=0), ValueError, ["divisor_override", "nonzero", "0"]),
    (nc.avg_pool2d, (X4, 2), dict(divisor_override=1.5), TypeError, ["divisor_override", "1.5"]),
    (nc.adaptive_avg_pool2d, (X4, 0), {}, ValueError, ["output_size", "positive", "0"]),
    (nc.adaptive_max_pool2d, (X4, (2, -1)), {}, ValueError, ["output_size", "(2, -1)"]),
    (nc.adaptive_max_pool2d, (X4, (2, "a")), {}, ValueError, ["output_size", "'a'"]),
    (nc.adaptive_avg_pool2d, (np.zeros((1, 1, 0, 3)), 1), {}, ValueError, ["x", "(1, 1, 0, 3)"]),
    (nc.max_pool2d_backward, (np.zeros((1, 2, 3, 3)), X4, 2), {}, ValueError, ["grad_out", "(1, 2, 2, 2)",
                                                                                 "(1, 2, 3, 3)"]),
    (nc.avg_pool2d_backward, (np.zeros((1, 2, 2)), X4, 2), {}, ValueError, ["grad_out", "4 dimensions"]),
    (nc.adaptive_avg_pool2d_backward, (np.zeros((1, 2, 1, 1)), X4, 2), {}, ValueError, ["grad_out", "(1, 2, 2, 2)"]),
    (nc.max_pool2d, (X4, 2), dict(target="tpu"), ValueError, ["target", "'tpu'"]),
    (nc.max_pool2d, (X4, 2), dict(device="tpu"), ValueError, ["device", "'tpu'"]),
    (nc.max_pool2d, (X4, 2), dict(kernel=3), ValueError, ["kernel", "1, 2", "max_pool2d", "3"]),
    (nc.avg_pool2d, (type("DeviceArray", (), {"__cuda_array_interface__": {}})(), 2), dict(device="cpu"), TypeError,
     ["x", "CUDA device array", "device='cuda'"]),
], ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
@pytest.mark.filterwarnings("ignore:target= is deprecated:DeprecationWarning")
def test_bad_input(fn, args, kwargs, exc, words):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    for w in words:
        assert w in str(info.value), f"{w!r} not in {str(info.value)!r}"
