"""Pooling CUDA kernels under the simulator: PyTorch golden files bit for bit, the reference for each kernel number,
the CPU kernels, indices and errors. The ops are the public ones with device="cuda" (the launchers in
numbacnn.cuda.pool take checked arrays)."""
import numpy as np
import pytest

import numbacnn as nc
from numbacnn import reference as ref
from golden.format import load_cases
from helpers import assert_close

pytestmark = pytest.mark.cudasim

CASES = load_cases("pool")
WITH_INDICES = ("max_pool2d", "min_pool2d", "adaptive_max_pool2d")
EXACT = dict(atol=0, rtol=0)
rng = np.random.default_rng(9)


def _cuda():
    import numbacnn.cuda as ncc

    return ncc


def _on_gpu(op):
    """The public op ``op`` run with device="cuda"."""
    fn = getattr(nc, op)
    return lambda *args, **kwargs: fn(*args, **kwargs, device="cuda")


def _pick():
    """A few cases of each op: the options the CPU tests also check (ceil_mode, dilation, padding, divisors, ties)."""
    picked, seen = [], {}
    for name, opts, a in CASES:
        op = opts["op"]
        if seen.get(op, 0) < (4 if op in ("max_pool2d", "avg_pool2d") else 2) and name.split("_")[-1][-1] in "05739":
            seen[op] = seen.get(op, 0) + 1
            picked.append((name, opts, a))
    picked += [c for c in CASES if "float64" in c[0]][:2]
    return picked


PICKED = _pick()


def _global(op, kwargs):
    """torch computes 1x1 adaptive average pooling with mean(): same value, another summation order."""
    return op == "adaptive_avg_pool2d" and kwargs["output_size"] in (1, [1, 1])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # assert_close on -inf == -inf
@pytest.mark.parametrize("name,opts,a", PICKED, ids=[c[0] for c in PICKED])
def test_pooling_matches_golden(small_blocks, name, opts, a):
    ncc = _cuda()
    op, kwargs = opts["op"], opts["kwargs"]
    fwd, bwd = _on_gpu(op), _on_gpu(op + "_backward")
    tol = dict(atol=1e-7, rtol=1e-6) if _global(op, kwargs) else EXACT
    if op in WITH_INDICES:
        y, idx = fwd(a["x"], **kwargs, return_indices=True)
        np.testing.assert_array_equal(ncc.to_host(idx), a["indices"], err_msg=f"{name} indices")
        assert ncc.to_host(idx).dtype == np.int64
    else:
        y = fwd(a["x"], **kwargs)
    assert ncc.to_host(y).dtype == a["x"].dtype
    assert_close(ncc.to_host(y), a["y"], name=f"{name} y", **tol)
    assert_close(ncc.to_host(bwd(a["grad_out"], a["x"], **kwargs)), a["grad_x"], name=f"{name} grad_x", **tol)


GRID = [  # (op, kwargs): every option, on random inputs with ties
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=(2, 3), stride=1)),
    ("min_pool2d", dict(kernel_size=2, padding=1, ceil_mode=True)),
    ("min_pool2d", dict(kernel_size=3, stride=(1, 2), dilation=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), divisor_override=5)),
    ("avg_pool2d", dict(kernel_size=2)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", dict(output_size=(None, 2))),
    ("adaptive_max_pool2d", dict(output_size=4)),
    ("adaptive_max_pool2d", dict(output_size=(9, 2))),  # more outputs than input rows: overlapping windows
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,kwargs", GRID)
def test_pooling_matches_cpu(small_blocks, op, kwargs, dtype):
    ncc = _cuda()
    x = rng.integers(-3, 4, (2, 2, 7, 6)).astype(dtype)  # small integers: many ties
    y_cpu = getattr(nc, op)(x, **kwargs)
    y = ncc.to_host(_on_gpu(op)(x, **kwargs))
    assert_close(y, y_cpu, **EXACT)
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(ncc.to_host(_on_gpu(op + "_backward")(gy, x, **kwargs)),
                 getattr(nc, op + "_backward")(gy, x, **kwargs), **EXACT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,kwargs", [g for g in GRID if g[0] in ("max_pool2d", "min_pool2d")] +
                         [("max_pool2d", dict(kernel_size=2, stride=2))])
def test_backward_with_indices_matches_cpu(small_blocks, op, kwargs, dtype):
    """indices= (the forward's, on the device or the host): the CPU's numbers and the x path's, bit for bit."""
    ncc = _cuda()
    x = rng.integers(-3, 4, (2, 2, 7, 6)).astype(dtype)
    y, idx = _on_gpu(op)(x, **kwargs, return_indices=True)
    gy = rng.standard_normal(y.shape).astype(dtype)
    want = getattr(nc, op + "_backward")(gy, x, **kwargs)
    for i in (idx, ncc.to_host(idx), ncc.to_device(ncc.to_host(idx).astype(np.int32))):  # any integer dtype
        assert_close(ncc.to_host(_on_gpu(op + "_backward")(gy, x, **kwargs, indices=i)), want, **EXACT)


def test_backward_bad_indices_and_all_padding(small_blocks):
    """indices= is checked once, the same way on both devices and for host and device arrays."""
    ncc = _cuda()
    x = np.ones((1, 2, 4, 4), np.float32)
    g = np.ones((1, 2, 2, 2), np.float32)
    bad_host = (np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 3), np.int64))
    for bad in bad_host + tuple(ncc.to_device(b) for b in bad_host):
        with pytest.raises((ValueError, TypeError)) as cpu:
            nc.max_pool2d_backward(g, x, 2, indices=ncc.to_host(bad))
        with pytest.raises(type(cpu.value)) as gpu:
            nc.max_pool2d_backward(g, x, 2, indices=bad, device="cuda")
        assert str(gpu.value) == str(cpu.value)
    with pytest.raises(TypeError, match="indices must hold integer positions h\\*W \\+ w .* got dtype float32"):
        nc.max_pool2d_backward(g, x, 2, indices=ncc.to_device(np.zeros((1, 2, 2, 2), np.float32)), device="cuda")
    with pytest.raises(ValueError, match=r"indices must have the output's shape \(1, 2, 2, 2\), got \(1, 2, 4\)"):
        nc.max_pool2d_backward(g, x, 2, indices=ncc.to_device(np.zeros((1, 2, 4), np.int64)), device="cuda")
    with pytest.raises(TypeError, match="indices is a CUDA device array but the op runs on the CPU"):
        nc.max_pool2d_backward(g, x, 2, indices=ncc.to_device(np.zeros((1, 2, 2, 2), np.int64)), device="cpu")
    x1 = np.array([[[[0.5]], [[-0.25]]]], np.float32)  # a window that saw only padding: off-plane index 1
    opts = dict(kernel_size=(1, 2), padding=(0, 1), dilation=(1, 2))
    y, idx = nc.max_pool2d(x1, **opts, return_indices=True, device="cuda")
    gx = nc.max_pool2d_backward(np.ones((1, 2, 1, 1), np.float32), x1, **opts, indices=idx, device="cuda")
    np.testing.assert_array_equal(ncc.to_host(gx), np.zeros_like(x1))


def test_nan_wins_and_device_input(small_blocks):
    ncc = _cuda()
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, idx = nc.max_pool2d(ncc.to_device(x), 2, return_indices=True)  # device=None follows the array
    want, want_idx = nc.max_pool2d(x, 2, return_indices=True)
    assert_close(ncc.to_host(out), want, **EXACT)
    np.testing.assert_array_equal(ncc.to_host(idx), want_idx)


def test_public_pool_api_dispatches(small_blocks):
    ncc = _cuda()
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    y = nc.max_pool2d(x, 2, device="cuda")
    assert ncc.is_device(y)
    assert_close(ncc.to_host(y), nc.max_pool2d(x, 2), **EXACT)
    with pytest.warns(DeprecationWarning, match="use device="):
        y = nc.max_pool2d(x, 2, target="cuda")
    assert ncc.is_device(y)
    assert_close(ncc.to_host(nc.adaptive_avg_pool2d_backward(np.ones((1, 2, 1, 1)), x, 1, device="cudasim")),
                 nc.adaptive_avg_pool2d_backward(np.ones((1, 2, 1, 1)), x, 1), **EXACT)
    with pytest.raises(ValueError, match="kernel must be None .* or one of 1 for max_pool2d, got 2"):
        nc.max_pool2d(x, 2, kernel=2, device="cuda")  # the CPU's kernel 2 has no CUDA twin


# (op, kwargs, shape): tiny inputs with ties, for each CUDA kernel number against the NumPy reference
KERNEL_CASES = [
    ("max_pool2d", dict(kernel_size=2), (1, 2, 4, 5)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True), (1, 2, 5, 6)),
    ("min_pool2d", dict(kernel_size=(2, 3), stride=1, padding=1), (1, 2, 4, 4)),
    ("avg_pool2d", dict(kernel_size=2), (1, 2, 4, 5)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 5, 4)),
    ("adaptive_avg_pool2d", dict(output_size=(2, 3)), (1, 2, 5, 4)),
    ("adaptive_max_pool2d", dict(output_size=(5, 2)), (1, 2, 3, 4)),
]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("op,kwargs,shape", KERNEL_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(KERNEL_CASES)])
def test_each_kernel_matches_reference(small_blocks, op, kwargs, shape):
    """Every number in numbacnn.cuda.pool.KERNELS, pinned, against numbacnn.reference (exact for max/min)."""
    from numbacnn.cuda.pool import KERNELS

    ncc = _cuda()
    x = rng.integers(-2, 3, shape).astype(np.float32)  # ties
    x.flat[3] = np.nan
    exact = op in WITH_INDICES
    tol = EXACT if exact else dict(atol=1e-6, rtol=1e-6)
    gy = None
    for kernel in KERNELS[op]:
        if exact:
            y, idx = _on_gpu(op)(x, **kwargs, return_indices=True, kernel=kernel)
            y_ref, idx_ref = getattr(ref, op)(x, **kwargs, return_indices=True)
            np.testing.assert_array_equal(ncc.to_host(idx), idx_ref, err_msg=f"{op} kernel {kernel}")
        else:
            y, y_ref = _on_gpu(op)(x, **kwargs, kernel=kernel), getattr(ref, op)(x, **kwargs)
        assert_close(ncc.to_host(y), y_ref, name=f"{op} kernel {kernel}", **tol)
        gy = rng.integers(-3, 4, y_ref.shape).astype(np.float32) if gy is None else gy
    for kernel in KERNELS[op + "_backward"]:
        gx = _on_gpu(op + "_backward")(gy, x, **kwargs, kernel=kernel)
        assert_close(ncc.to_host(gx), getattr(ref, op + "_backward")(gy, x, **kwargs),
                     name=f"{op}_backward kernel {kernel}", **tol)


@pytest.mark.parametrize("call", [
    lambda m, x: m.max_pool2d(x, 2, padding=2),
    lambda m, x: m.max_pool2d(x, 9),
    lambda m, x: m.max_pool2d(x, 2, return_indices=1),
    lambda m, x: m.avg_pool2d(x, 2, divisor_override=0),
    lambda m, x: m.avg_pool2d(x, 2, count_include_pad="yes"),
    lambda m, x: m.adaptive_max_pool2d(x, 0),
    lambda m, x: m.min_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2),
    lambda m, x: m.max_pool2d(x[0], 2),
])
def test_errors_are_the_cpu_errors(small_blocks, call):
    ncc = _cuda()
    x = np.ones((1, 2, 4, 4), np.float32)
    with pytest.raises((ValueError, TypeError)) as cpu:
        call(nc, x)
    with pytest.raises(type(cpu.value)) as gpu:
        call(nc, ncc.to_device(x))  # device=None follows x to the GPU
    assert str(gpu.value) == str(cpu.value)


def test_picked_golden_cases_cover_the_options():
    kw = [o["kwargs"] for _, o, _ in PICKED]
    assert {o["op"] for _, o, _ in PICKED} == {"max_pool2d", "min_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                                               "adaptive_max_pool2d"}
    assert any(k.get("ceil_mode") for k in kw) and any(k.get("dilation") not in (None, 1) for k in kw)
    assert any(k.get("padding") for k in kw) and any(k.get("stride") is not None for k in kw)
