"""On a real GPU: every CUDA op against the CPU kernels at LeNet's shapes, both kernel variants, and zero-copy
interop with PyTorch CUDA tensors / CuPy arrays. Skipped without a GPU and under the simulator (too slow there;
tests/cudasim covers the same kernels on tiny shapes)."""
import os

import numpy as np
import pytest

import numbacnn as nc
from helpers import assert_close


def _real_gpu():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _real_gpu(), reason="needs a real CUDA GPU")]

BATCH = 8
TOL = dict(atol=1e-4, rtol=1e-4)
rng = np.random.default_rng(1)


@pytest.fixture(params=["simple", "fast", "small-blocks"])
def variant(request):
    from numbacnn.cuda import config

    opts = {"simple": dict(simple=True), "fast": dict(simple=False),
            "small-blocks": dict(simple=False, threads_per_block=32, tile=8)}[request.param]
    with config.override(**opts):
        yield request.param


def _host(a):
    from numbacnn.cuda import to_host

    return None if a is None else to_host(a)


def _same(got, want, tol=TOL):
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            if w is None:
                assert g is None
            else:
                assert_close(_host(g), w, **tol)
    else:
        assert_close(_host(got), want, **tol)


CONV = [  # LeNet's two convolutions, and the options LeNet does not use
    ((BATCH, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
    ((BATCH, 6, 14, 14), (16, 6, 5, 5), dict()),
    ((BATCH, 4, 13, 12), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
    ((BATCH, 3, 11, 11), (3, 1, 4, 3), dict(padding="same", dilation=2, groups=3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("xs,ws,opts", CONV)
def test_conv2d(variant, xs, ws, opts, flip, dtype):
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y = nc.conv2d(x, w, b, **opts, flip=flip)
    _same(nc.conv2d(x, w, b, **opts, flip=flip, device="cuda"), y)
    gy = rng.standard_normal(y.shape).astype(dtype)
    _same(nc.conv2d_backward(gy, x, w, b, **opts, flip=flip, device="cuda"),
          nc.conv2d_backward(gy, x, w, b, **opts, flip=flip))


@pytest.mark.parametrize("n,i,o", [(BATCH, 400, 120), (BATCH, 120, 84), (BATCH, 84, 10), (3, 33, 17)])
def test_linear(variant, n, i, o):
    x, w = rng.standard_normal((n, i)).astype(np.float32), rng.standard_normal((o, i)).astype(np.float32)
    b, gy = rng.standard_normal(o).astype(np.float32), rng.standard_normal((n, o)).astype(np.float32)
    _same(nc.linear(x, w, b, device="cuda"), nc.linear(x, w, b))
    _same(nc.linear_backward(gy, x, w, b, device="cuda"), nc.linear_backward(gy, x, w, b))
    _same(nc.linear_backward(gy, x, w, None, device="cuda"), nc.linear_backward(gy, x, w, None))


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_activations(variant, op):
    x = rng.standard_normal((BATCH, 6, 28, 28)).astype(np.float32)
    _same(getattr(nc, op)(x, device="cuda"), getattr(nc, op)(x), dict(atol=1e-6, rtol=1e-6))
    _same(getattr(nc, op + "_backward")(x, x, device="cuda"), getattr(nc, op + "_backward")(x, x),
          dict(atol=1e-6, rtol=1e-6))


def test_cross_entropy(variant):
    from numbacnn.cuda import to_device

    logits = (rng.standard_normal((256, 10)) * 5).astype(np.float32)
    target = rng.integers(0, 10, 256)
    loss = nc.cross_entropy(to_device(logits), target)
    assert loss.shape == ()
    assert_close(_host(loss), nc.cross_entropy(logits, target), atol=1e-5, rtol=1e-5)
    _same(nc.cross_entropy_backward(loss, to_device(logits), target),
          nc.cross_entropy_backward(float(_host(loss)), logits, target), dict(atol=1e-7, rtol=1e-5))


POOL = [
    ("max_pool2d", dict(kernel_size=2)), ("avg_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("min_pool2d", dict(kernel_size=(2, 3), stride=1, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=3, divisor_override=7)),
    ("adaptive_avg_pool2d", dict(output_size=(5, 7))), ("adaptive_max_pool2d", dict(output_size=(5, 7))),
    ("adaptive_avg_pool2d", dict(output_size=1)),
]


@pytest.mark.parametrize("op,kwargs", POOL)
def test_pooling(variant, op, kwargs):
    x = rng.integers(-4, 5, (BATCH, 6, 28, 28)).astype(np.float32)  # ties
    y = getattr(nc, op)(x, **kwargs)
    exact = dict(atol=0, rtol=0)
    _same(getattr(nc, op)(x, **kwargs, device="cuda"), y, exact)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    _same(getattr(nc, op + "_backward")(gy, x, **kwargs, device="cuda"), getattr(nc, op + "_backward")(gy, x, **kwargs),
          exact)


def test_sgd_on_the_gpu(variant):
    from numbacnn.cuda import to_device
    from numbacnn.optim import sgd

    sgd_cpu = sgd  # the same public function: the arrays decide the device

    p = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    grads = [rng.standard_normal(p.shape).astype(np.float32) for _ in range(5)]
    pc, bc, pg, bg = [p.copy()], [None], [to_device(p)], [None]
    opts = dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=1e-3, nesterov=True, maximize=False)
    for g in grads:
        sgd_cpu(pc, [g], bc, **opts)
        sgd(pg, [to_device(g)], bg, **opts)
    _same(pg[0], pc[0], dict(atol=1e-6, rtol=1e-6))
    _same(bg[0], bc[0], dict(atol=1e-6, rtol=1e-6))


def test_torch_cuda_tensors_are_used_without_copying():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    from numbacnn.cuda import to_device
    from numbacnn.optim import sgd

    t = torch.randn(4, 1, 9, 9, device="cuda")
    d = to_device(t)
    assert d.__cuda_array_interface__["data"][0] == t.data_ptr()  # same memory
    w = torch.randn(2, 1, 3, 3, device="cuda")
    _same(nc.conv2d(t, w, device="cuda"), nc.conv2d(t.cpu().numpy(), w.cpu().numpy()))
    p, g = torch.ones(10, device="cuda"), torch.full((10,), 2.0, device="cuda")
    sgd([p], [g], [None], lr=0.5)  # updates the torch tensor in place
    assert torch.allclose(p, torch.zeros(10, device="cuda"))


def test_cupy_arrays_are_used_without_copying():
    cp = pytest.importorskip("cupy")
    from numbacnn.cuda import to_device

    a = cp.arange(12, dtype=cp.float32).reshape(3, 4)
    assert to_device(a).__cuda_array_interface__["data"][0] == a.data.ptr
    _same(nc.relu(a - 5, device="cuda"), np.maximum(cp.asnumpy(a) - 5, 0))


def test_device_name_for_the_record():
    from numba import cuda

    dev = cuda.get_current_device()
    print(f"GPU: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}, "
          f"compute capability {dev.compute_capability}")


def test_the_simulator_suite_passes_on_the_gpu():
    """tests/cudasim, unchanged, on the real GPU (tests/conftest.py runs cudasim-marked tests when
    NUMBACNN_CUDASIM_TESTS_ON_GPU=1)."""
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["NUMBACNN_CUDASIM_TESTS_ON_GPU"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/cudasim", "-q", "-p", "no:cacheprovider"],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                          timeout=1800)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    if proc.returncode == 0 and " passed" not in proc.stdout:
        pytest.skip("tests/conftest.py skipped every cudasim test: it does not honour NUMBACNN_CUDASIM_TESTS_ON_GPU")
    assert proc.returncode == 0, f"tests/cudasim failed on the GPU (exit {proc.returncode}):\n{tail}"
