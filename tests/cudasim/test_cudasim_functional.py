"""linear / activations / cross-entropy CUDA kernels under the simulator: golden files, CPU parity, device arrays,
every kernel number of numbacnn.cuda.functional against numbacnn.reference."""
from functools import partial

import numpy as np
import pytest

import numbacnn as nc
from golden.format import load_cases
from helpers import assert_close

pytestmark = pytest.mark.cudasim

TOL = dict(atol=2e-5, rtol=2e-5)
GOLDEN = {c[0]: c for c in load_cases("functional")}
rng = np.random.default_rng(5)


def _cuda():
    import numbacnn.cuda as ncc

    return ncc


def _on_gpu(op, *args, **kwargs):
    """numbacnn.<op>(..., device="cuda"): the public op run by numbacnn.cuda.functional."""
    return getattr(nc, op)(*args, **kwargs, device="cuda")


@pytest.mark.parametrize("name", ["linear0", "linear2", "linear3"])
def test_linear_matches_golden(variant, name):
    ncc = _cuda()
    _, _, a = GOLDEN[name]
    bias = a.get("bias")
    assert_close(ncc.to_host(_on_gpu("linear", a["x"], a["weight"], bias)), a["y"], name=f"{name} y", **TOL)
    gx, gw, gb = _on_gpu("linear_backward", a["grad_out"], a["x"], a["weight"], bias)
    assert_close(ncc.to_host(gx), a["grad_x"], name=f"{name} grad_x", **TOL)
    assert_close(ncc.to_host(gw), a["grad_weight"], name=f"{name} grad_weight", **TOL)
    if bias is None:
        assert gb is None
    else:
        assert_close(ncc.to_host(gb), a["grad_bias"], name=f"{name} grad_bias", **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,i,o", [(5, 7, 3), (9, 2, 6), (1, 13, 1)])
def test_linear_matches_cpu(variant, n, i, o, dtype):
    ncc = _cuda()
    x, w = rng.standard_normal((n, i)).astype(dtype), rng.standard_normal((o, i)).astype(dtype)
    b, gy = rng.standard_normal(o).astype(dtype), rng.standard_normal((n, o)).astype(dtype)
    tol = TOL if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    y = ncc.to_host(_on_gpu("linear", x, w, b))
    assert y.dtype == dtype
    assert_close(y, nc.linear(x, w, b), **tol)
    for got, want in zip(_on_gpu("linear_backward", gy, x, w, b), nc.linear_backward(gy, x, w, b)):
        assert_close(ncc.to_host(got), want, **tol)


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_activations_match_golden_and_cpu(small_blocks, op):
    ncc = _cuda()
    _, _, a = GOLDEN[op]
    fwd, bwd = partial(getattr(nc, op), device="cuda"), partial(getattr(nc, op + "_backward"), device="cuda")
    assert_close(ncc.to_host(fwd(a["x"])), a["y"], name=f"{op} y", **TOL)
    assert_close(ncc.to_host(bwd(a["grad_out"], a["x"])), a["grad_x"], name=f"{op} grad_x", **TOL)
    x = rng.standard_normal((2, 3, 5))
    x[0, 0, :2] = 0.0  # relu's gradient at 0 is 0, as in PyTorch
    assert_close(ncc.to_host(fwd(x)), getattr(nc, op)(x), atol=1e-15, rtol=1e-15)
    assert_close(ncc.to_host(bwd(x * 3, x)), getattr(nc, op + "_backward")(x * 3, x), atol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_backward_from_output(small_blocks, op, dtype):
    """y= (the forward's output, on the device or the host) matches the CPU's y= and the x path."""
    ncc = _cuda()
    x = (rng.standard_normal((2, 3, 5)) * 4).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    y_dev = _on_gpu(op, x)
    y_cpu = getattr(nc, op)(x)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-14, rtol=1e-12)
    got = ncc.to_host(_on_gpu(op + "_backward", gy, x, y=y_dev))
    assert got.dtype == dtype
    assert_close(got, getattr(nc, op + "_backward")(gy, x, y=y_cpu), **tol)
    assert_close(got, getattr(nc, op + "_backward")(gy, x), **tol)
    assert_close(ncc.to_host(getattr(nc, op + "_backward")(gy, None, y=y_dev)), got, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"y must have x's shape \(2, 3, 5\), got \(3, 5\)"):
        _on_gpu(op + "_backward", gy, x, y=y_cpu[0])
    with pytest.raises(TypeError, match="needs x or y"):
        _on_gpu(op + "_backward", gy, None)


def test_activation_errors(small_blocks):
    ncc = _cuda()
    with pytest.raises(ValueError, match=r"grad_out must have x's shape \(2, 3\), got \(3, 2\)"):
        _on_gpu("relu_backward", np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        _on_gpu("tanh", np.array(["a"]))


def test_cross_entropy_matches_golden(variant):
    ncc = _cuda()
    _, _, a = GOLDEN["cross_entropy0"]
    loss = _on_gpu("cross_entropy", a["logits"], a["target"])
    assert ncc.is_device(loss) and loss.shape == ()
    assert_close(ncc.to_host(loss), a["y"], name="loss", **TOL)
    g = _on_gpu("cross_entropy_backward", a["grad_out"], a["logits"], a["target"])
    assert_close(ncc.to_host(g), a["grad_logits"], name="grad_logits", **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_cpu_and_stays_on_the_device(variant, dtype):
    ncc = _cuda()
    logits = (rng.standard_normal((11, 4)) * 30).astype(dtype)  # large logits: the log-sum-exp must be stable
    target = rng.integers(0, 4, 11)
    loss = _on_gpu("cross_entropy", ncc.to_device(logits), ncc.to_device(target))  # labels on the device too
    want = nc.cross_entropy(logits, target)
    assert isinstance(float(ncc.to_host(loss)), float)
    assert_close(ncc.to_host(loss), want, atol=1e-6 if dtype == np.float32 else 1e-12, rtol=1e-6)
    # the loss's gradient can stay on the device: a 1-element device array as grad_out
    g = _on_gpu("cross_entropy_backward", ncc.to_device(np.array([2.0], dtype)), logits, target)
    assert_close(ncc.to_host(g), nc.cross_entropy_backward(2.0, logits, target), atol=1e-7, rtol=1e-6)
    assert_close(ncc.to_host(nc.cross_entropy(ncc.to_device(logits), target)), want, atol=1e-6, rtol=1e-6)


def test_cross_entropy_label_errors_match_cpu(small_blocks):
    ncc = _cuda()
    logits = np.zeros((3, 4), np.float32)
    for bad in ([0, 4, 1], [0, -1, 1], [0, 1], np.array([0.0, 1.0, 2.0])):
        with pytest.raises((ValueError, TypeError)) as cpu:
            nc.cross_entropy(logits, bad)
        with pytest.raises(type(cpu.value)) as gpu:
            _on_gpu("cross_entropy", logits, bad)
        assert str(gpu.value) == str(cpu.value)
    # labels already on the device are not read back: a bad one makes the loss NaN
    assert np.isnan(ncc.to_host(_on_gpu("cross_entropy", logits, ncc.to_device(np.array([0, 4, 1])))))
    with pytest.raises(ValueError, match=r"logits must be non-empty"):
        _on_gpu("cross_entropy", np.zeros((0, 3)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="grad_out must be a scalar"):
        _on_gpu("cross_entropy_backward", ncc.to_device(np.ones(2, np.float32)), logits, [0, 1, 2])


def test_public_functional_api_dispatches(small_blocks):
    ncc = _cuda()
    x = rng.standard_normal((2, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    assert_close(ncc.to_host(nc.linear(x, w, device="cudasim")), nc.linear(x, w), **TOL)
    with pytest.warns(DeprecationWarning, match="target= is deprecated"):
        assert_close(ncc.to_host(nc.relu(x, target="cuda")), nc.relu(x), atol=0, rtol=0)
    assert ncc.is_device(nc.relu(ncc.to_device(x)))  # device=None follows the arrays
    with pytest.raises(TypeError, match="x is a CUDA device array but the op runs on the CPU: pass device='cuda'"):
        nc.relu(ncc.to_device(x), device="cpu")
    loss = nc.cross_entropy(x, [0, 2], device="cuda")
    assert ncc.is_device(loss)
    assert_close(float(ncc.to_host(loss)), nc.cross_entropy(x, [0, 2]), **TOL)


def test_linear_backward_with_a_strided_device_grad(small_blocks):
    ncc = _cuda()
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    gyT = rng.standard_normal((2, 3))
    gy_view = ncc.to_device(gyT).T  # a (3, 2) view with swapped strides... or a copy, depending on the library
    for got, want in zip(_on_gpu("linear_backward", gy_view, x, w, b), nc.linear_backward(gyT.T, x, w, b)):
        assert_close(ncc.to_host(got), want, atol=1e-12, rtol=1e-12)
    out = ncc.to_device(np.zeros((2, 3)))
    from numbacnn.cuda.functional import copy2d_kernel1

    copy2d_kernel1[1, 8](ncc.to_device(gyT.T.copy()).T, out)  # strided in, C order out
    assert_close(ncc.to_host(out), gyT, atol=0, rtol=0)


def test_cross_entropy_follows_device_logits(small_blocks):
    ncc = _cuda()
    logits = rng.standard_normal((3, 4)).astype(np.float32)
    loss = nc.cross_entropy(ncc.to_device(logits), [1, 0, 3])  # device=None: the logits' device decides
    assert ncc.is_device(loss) and loss.shape == ()
    assert_close(ncc.to_host(loss), nc.cross_entropy(logits, [1, 0, 3]), atol=1e-6, rtol=1e-6)
    g = nc.cross_entropy_backward(loss, ncc.to_device(logits), [1, 0, 3])
    assert ncc.is_device(g)


# ---------------------------------------------------------------- every CUDA kernel number against numbacnn.reference

def _gpu_kernels(op):
    from numbacnn.cuda.functional import KERNELS

    return KERNELS[op]


def _ref():
    from numbacnn import reference

    return reference


F64 = dict(atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n,i,o", [(5, 7, 3), (1, 9, 6)])
def test_every_linear_kernel_matches_reference(small_blocks, n, i, o, bias):
    ncc, ref = _cuda(), _ref()
    x, w, gy = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal((n, o))
    b = rng.standard_normal(o) if bias else None
    for kernel in _gpu_kernels("linear"):
        assert_close(ncc.to_host(_on_gpu("linear", x, w, b, kernel=kernel)), ref.linear(x, w, b),
                     name=f"linear kernel {kernel}", **F64)
    for kernel in _gpu_kernels("linear_backward"):
        got = _on_gpu("linear_backward", gy, x, w, b, kernel=kernel)
        for name, g, e in zip(("grad_x", "grad_weight", "grad_bias"), got, ref.linear_backward(gy, x, w, b)):
            if e is None:
                assert g is None
            else:
                assert_close(ncc.to_host(g), e, name=f"linear_backward kernel {kernel} {name}", **F64)


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_every_activation_kernel_matches_reference(small_blocks, op):
    ncc, ref = _cuda(), _ref()
    x = rng.standard_normal((2, 3, 5)) * 4
    x.flat[:3] = [0.0, 30.0, -30.0]
    gy = rng.standard_normal(x.shape)
    y = getattr(ref, op)(x)
    for kernel in _gpu_kernels(op):
        assert_close(ncc.to_host(_on_gpu(op, x, kernel=kernel)), y, name=f"{op} kernel {kernel}", **F64)
    for kernel in _gpu_kernels(op + "_backward"):
        want = getattr(ref, op + "_backward")(gy, x)
        got = _on_gpu(op + "_backward", gy, x, kernel=kernel)
        assert_close(ncc.to_host(got), want, name=f"{op}_backward kernel {kernel}", **F64)
        if op != "relu":
            got = _on_gpu(op + "_backward", gy, None, y=y, kernel=kernel)
            assert_close(ncc.to_host(got), want, name=f"{op}_backward y= kernel {kernel}", **F64)


def test_every_cross_entropy_kernel_matches_reference(small_blocks):
    ncc, ref = _cuda(), _ref()
    logits, target = rng.standard_normal((11, 4)) * 10, rng.integers(0, 4, 11)
    for kernel in _gpu_kernels("cross_entropy"):
        loss = _on_gpu("cross_entropy", logits, target, kernel=kernel)
        assert_close(ncc.to_host(loss), ref.cross_entropy(logits, target), name=f"kernel {kernel}", **F64)
    for kernel in _gpu_kernels("cross_entropy_backward"):
        g = _on_gpu("cross_entropy_backward", 0.5, logits, target, kernel=kernel)
        assert_close(ncc.to_host(g), ref.cross_entropy_backward(0.5, logits, target), name=f"kernel {kernel}", **F64)


def test_gpu_kernel_numbers_are_checked(small_blocks):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="kernel must be None .* or one of 1 for sigmoid, got 2"):
        _on_gpu("sigmoid", x, kernel=2)  # the GPU has no second sigmoid kernel
    with nc.formula_kernels():
        assert_close(_cuda().to_host(_on_gpu("linear", x, np.ones((4, 3)))), nc.linear(x, np.ones((4, 3))), **TOL)
