"""conv2d CUDA kernels (numbacnn.cuda.conv) under the simulator: every kernel number against the reference, golden
files, CPU parity, device inputs, errors (the public numbacnn.conv with device="cuda")."""
import functools

import numpy as np
import pytest

import numbacnn as nc
from numbacnn import reference as ref
from numbacnn.geometry import conv_geometry
from golden.format import load_cases
from helpers import assert_close

pytestmark = pytest.mark.cudasim

TOL = dict(atol=1e-4, rtol=1e-4)
GOLDEN = {c[0]: c for c in load_cases("conv")}
# A few tiny cases covering every option (the simulator runs every thread in Python: keep it small).
PICKED = ["grid01", "grid22", "grid47", "same5", "groups3", "float64"]
rng = np.random.default_rng(3)


def _cuda():
    import numbacnn.cuda as ncc

    return ncc


gpu_conv2d = functools.partial(nc.conv2d, device="cuda")
gpu_conv2d_backward = functools.partial(nc.conv2d_backward, device="cuda")


def _opts(opts):
    o = {k: opts[k] for k in ("stride", "padding", "dilation", "groups")}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in o.items()}


@pytest.mark.parametrize("name", PICKED)
def test_conv2d_matches_golden(variant, name):
    _, opts, a = GOLDEN[name]
    ncc = _cuda()
    bias = a.get("bias")
    y = gpu_conv2d(a["x"], a["weight"], bias, **_opts(opts), flip=opts["flip"])
    assert_close(ncc.to_host(y), a["y"], name=f"{name} y", **TOL)
    assert ncc.to_host(y).dtype == a["x"].dtype
    gx, gw, gb = gpu_conv2d_backward(a["grad_out"], a["x"], a["weight"], bias, **_opts(opts), flip=opts["flip"])
    assert_close(ncc.to_host(gx), a["grad_x"], name=f"{name} grad_x", **TOL)
    assert_close(ncc.to_host(gw), a["grad_weight"], name=f"{name} grad_weight", **TOL)
    if bias is None:
        assert gb is None
    else:
        assert_close(ncc.to_host(gb), a["grad_bias"], name=f"{name} grad_bias", **TOL)


GRID = [  # (x shape, weight shape, options, flip, bias, dtype): every option, a few combinations
    ((2, 2, 6, 5), (3, 2, 3, 2), dict(), False, True, np.float32),
    ((1, 2, 6, 5), (2, 2, 3, 2), dict(stride=2, padding=1), True, True, np.float32),
    ((1, 2, 7, 6), (2, 2, 2, 3), dict(stride=(2, 1), padding=(2, 0), dilation=(1, 2)), False, False, np.float32),
    ((1, 4, 4, 5), (4, 2, 2, 2), dict(groups=2, padding="same"), True, False, np.float32),
    ((1, 3, 5, 6), (3, 1, 2, 2), dict(groups=3, padding="same", dilation=2), False, True, np.float64),
    ((2, 2, 5, 5), (2, 2, 3, 3), dict(padding="valid", stride=3), True, True, np.float64),
    ((1, 1, 9, 9), (1, 1, 5, 5), dict(padding=2), False, True, np.float32),  # LeNet's first layer, shrunk
]


@pytest.mark.parametrize("xs,ws,opts,flip,bias,dtype", GRID)
def test_conv2d_matches_cpu(variant, xs, ws, opts, flip, bias, dtype):
    ncc = _cuda()
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    y_cpu = nc.conv2d(x, w, b, **opts, flip=flip)
    y = ncc.to_host(gpu_conv2d(x, w, b, **opts, flip=flip))
    tol = TOL if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    assert y.dtype == dtype
    assert_close(y, y_cpu, name="y", **tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want, what in zip(gpu_conv2d_backward(gy, x, w, b, **opts, flip=flip),
                               nc.conv2d_backward(gy, x, w, b, **opts, flip=flip),
                               ("grad_x", "grad_weight", "grad_bias")):
        if want is None:
            assert got is None
        else:
            assert_close(ncc.to_host(got), want, name=what, **tol)


def test_several_blocks_are_used(variant):
    from numbacnn.cuda import config

    assert config.blocks(2 * 3 * 5 * 7) > 1 and config.tile < 5  # GRID outputs span several blocks / tiles


def test_tiled_kernel_falls_back_when_the_patch_does_not_fit(small_blocks, monkeypatch):
    from numbacnn.cuda import config, conv

    ncc = _cuda()
    x, w = rng.standard_normal((1, 2, 6, 6)).astype(np.float32), rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    monkeypatch.setattr(conv, "MAX_SHARED_BYTES", 0)
    with config.override(simple=False):
        assert_close(ncc.to_host(gpu_conv2d(x, w, padding=1)), nc.conv2d(x, w, padding=1), **TOL)
    with pytest.raises(ValueError, match="kernel 2 of conv2d needs its input patch .* shared memory; kernel 1"):
        gpu_conv2d(x, w, padding=1, kernel=2)  # pinned, it says why instead of running another kernel


KERNEL_CASES = [  # tiny (the simulator runs every thread in Python): padding, groups and dilation, stride, float64
    ((1, 2, 5, 4), (3, 2, 3, 2), dict(padding=1, flip=True), np.float32),
    ((2, 4, 4, 5), (4, 2, 2, 2), dict(groups=2, dilation=(1, 2), padding=(1, 0)), np.float32),
    ((1, 2, 6, 5), (2, 2, 3, 3), dict(stride=2, padding=1), np.float64),
]


@pytest.mark.parametrize("xs,ws,opts,dtype", KERNEL_CASES)
def test_every_kernel_matches_the_reference(small_blocks, xs, ws, opts, dtype):
    """kernel=k runs CUDA kernel k for every pass and equals numbacnn.reference, for each k in KERNELS."""
    from numbacnn.cuda import conv

    ncc = _cuda()
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    o = dict(opts)
    flip = o.pop("flip", False)
    geo = conv_geometry(xs, ws, b.shape, **o)
    ro = dict(stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups, flip=flip)
    y_ref = ref.conv2d(x, w, b, **ro)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    grads_ref = ref.conv2d_backward(gy, x, w, b, **ro)
    tol = TOL if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    assert set(conv.KERNELS["conv2d"]) | set(conv.KERNELS["conv2d_backward"]) == {1, 2}
    for kernel in conv.KERNELS["conv2d"]:
        y = gpu_conv2d(x, w, b, **opts, kernel=kernel)
        assert_close(ncc.to_host(y), y_ref, name=f"kernel {kernel} y", **tol)
    for kernel in conv.KERNELS["conv2d_backward"]:
        grads = gpu_conv2d_backward(gy, x, w, b, **opts, kernel=kernel)
        for got, want, name in zip(grads, grads_ref, ("grad_x", "grad_weight", "grad_bias")):
            assert_close(ncc.to_host(got), want, name=f"kernel {kernel} {name}", **tol)


def test_every_kernel_runs_its_own_kernels(small_blocks, monkeypatch):
    """kernel=1 launches only kernels 1 (the formula), kernel=2 the faster ones, whatever config.simple says."""
    from numbacnn.cuda import config, conv

    launched = []

    class Spy:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, launch):
            launched.append(self.name)
            return self.kernel[launch]

    for name in ("conv2d_forward_kernel1", "conv2d_forward_kernel2", "conv2d_grad_input_kernel1",
                 "conv2d_grad_weight_kernel1", "conv2d_grad_weight_kernel2", "channel_sum_kernel1",
                 "channel_sum_kernel2"):
        monkeypatch.setattr(conv, name, Spy(name, getattr(conv, name)))
    x, w, b = np.ones((1, 1, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32), np.ones(2, np.float32)
    gy = np.ones((1, 2, 2, 2), np.float32)
    for kernel, simple in ((1, False), (2, True)):
        launched.clear()
        with config.override(simple=simple):
            gpu_conv2d(x, w, b, kernel=kernel)
            gpu_conv2d_backward(gy, x, w, b, kernel=kernel)
        expected = {1: ["conv2d_forward_kernel1", "conv2d_grad_input_kernel1", "conv2d_grad_weight_kernel1",
                        "channel_sum_kernel1"],
                    2: ["conv2d_forward_kernel2", "conv2d_grad_input_kernel1", "conv2d_grad_weight_kernel2",
                        "channel_sum_kernel2"]}[kernel]
        assert launched == expected
    launched.clear()
    with nc.formula_kernels():
        gpu_conv2d(x, w, b)
    assert launched == ["conv2d_forward_kernel1"]


@pytest.mark.parametrize("kernel", [1, 2])
def test_corr2d_on_cuda(small_blocks, kernel):
    ncc = _cuda()
    X, K = rng.standard_normal((6, 7)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    Y = nc.corr2d(X, K, kernel=kernel, device="cuda")
    assert ncc.is_device(Y)
    assert_close(ncc.to_host(Y), ref.corr2d(X, K), name="corr2d", **TOL)


def test_public_api_device_cuda_and_cudasim(small_blocks):
    ncc = _cuda()
    x, w = rng.standard_normal((1, 1, 4, 4)).astype(np.float32), rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    for device in ("cuda", "cudasim"):
        y = nc.conv2d(x, w, padding=1, device=device)  # the public API hands over to numbacnn.cuda
        assert ncc.is_device(y)
        assert_close(ncc.to_host(y), nc.conv2d(x, w, padding=1), **TOL)
        gx, gw, gb = nc.conv2d_backward(ncc.to_host(y), x, w, padding=1, device=device)
        assert ncc.is_device(gx) and ncc.is_device(gw) and gb is None
    with pytest.warns(DeprecationWarning, match="target= is deprecated"):
        assert ncc.is_device(nc.conv2d(x, w, padding=1, target="cuda"))
    dy = nc.conv2d(ncc.to_device(x), w, padding=1)  # device=None follows the arrays
    assert ncc.is_device(dy)
    with pytest.raises(TypeError, match="x is a CUDA device array but the op runs on the CPU"):
        nc.conv2d(ncc.to_device(x), w, device="cpu")


def test_device_inputs_are_used_in_place(small_blocks):
    ncc = _cuda()
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    dx, dw = ncc.to_device(x), ncc.to_device(w)
    assert ncc.to_device(dx) is dx  # no copy for arrays already on the device
    y = gpu_conv2d(dx, dw, np.zeros(2, np.float32), stride=2)  # a host bias joins the device dtype
    assert_close(ncc.to_host(y), nc.conv2d(x, w, stride=2), **TOL)
    with pytest.raises(TypeError, match="weight has dtype float64 but x has float32"):
        gpu_conv2d(dx, ncc.to_device(w.astype(np.float64)))
    with pytest.raises(TypeError, match="flip must be True or False"):
        gpu_conv2d(dx, dw, flip="yes")


@pytest.mark.parametrize("kwargs", [dict(groups=3), dict(padding="same", stride=2), dict(stride=0), dict(padding=-1),
                                    dict(padding="full"), dict(dilation=(1, 2, 3))])
def test_errors_are_the_cpu_errors(small_blocks, kwargs):
    ncc = _cuda()
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError) as cpu:
        nc.conv2d(x, w, **kwargs)
    with pytest.raises(ValueError) as gpu:
        gpu_conv2d(x, w, **kwargs)
    assert str(gpu.value) == str(cpu.value)


def test_shape_errors_name_the_argument(small_blocks):
    ncc = _cuda()
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got 3 \(shape \(2, 5, 5\)\)"):
        gpu_conv2d(np.ones((2, 5, 5)), np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got 3"):
        gpu_conv2d(_cuda().to_device(np.ones((2, 5, 5), np.float32)), np.ones((1, 2, 3, 3)))
    with pytest.raises(TypeError, match="x must hold float32 or float64 on the device, got dtype int32"):
        gpu_conv2d(_cuda().to_device(np.ones((1, 2, 5, 5), np.int32)), np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"grad_out must have the output's shape \(1, 1, 3, 3\), got \(1, 1, 2, 2\)"):
        gpu_conv2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 2, 5, 5)), np.ones((1, 2, 3, 3)))


def test_empty_batch_launches_nothing(variant):
    ncc = _cuda()
    x, w, b = np.zeros((0, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32), np.ones(3, np.float32)
    assert gpu_conv2d(x, w, b).shape == (0, 3, 3, 3)
    gy = np.zeros((0, 3, 3, 3), np.float32)
    for got, want in zip(gpu_conv2d_backward(gy, x, w, b), nc.conv2d_backward(gy, x, w, b)):
        assert_close(ncc.to_host(got), want, atol=0, rtol=0)
    gx, gw, gb = nc.linear_backward(np.zeros((0, 3)), np.zeros((0, 4)), np.ones((3, 4)), np.ones(3), device="cuda")
    assert nc.linear(np.zeros((0, 4)), np.ones((3, 4)), device="cuda").shape == (0, 3)
    assert gx.shape == (0, 4) and not ncc.to_host(gw).any() and not ncc.to_host(gb).any()
