"""The CUDA thread map under Numba's simulator: same outputs as the real kernels, one thread per element."""
import numpy as np
import pytest

import numbacnn as nc
from numbacnn.conv import conv_geometry

pytestmark = pytest.mark.cudasim

rng = np.random.default_rng(11)


def _has_cuda_op(name):
    import numbacnn.cuda as ncc

    try:
        getattr(ncc, name)
        return True
    except (AttributeError, ImportError):
        return False


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def _check_map(block, thread, layout, threads):
    """Every output element was computed by exactly the thread the launch layout says."""
    N, P, HO, WO, _ = block.shape
    n, p, i, j = np.meshgrid(*[np.arange(s) for s in (N, P, HO, WO)], indexing="ij")
    assert (block >= 0).all() and (thread >= 0).all()
    assert (thread[..., 2] == 0).all()
    if layout == "simple":
        t = ((n * P + p) * HO + i) * WO + j
        assert np.array_equal(block[..., 0] * threads + thread[..., 0], t)
        assert (block[..., 1:] == 0).all() and (thread[..., 1] == 0).all()
    else:
        ty, tx = threads
        assert np.array_equal(block[..., 0] * tx + thread[..., 0], j)
        assert np.array_equal(block[..., 1] * ty + thread[..., 1], i)
        assert np.array_equal(block[..., 2], n * P + p)


@pytest.mark.parametrize("layout,threads", [("simple", 32), ("tiled", (2, 4))])
def test_conv2d_thread_map_equals_kernel(layout, threads):
    from numbacnn.trace.cuda_map import conv2d_thread_map

    x = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    geo = conv_geometry(x.shape, w.shape, b.shape, (2, 1), 1, (1, 2), 2)
    out, block, thread = conv2d_thread_map(x, w, b, geo, threads=threads, layout=layout)
    assert np.array_equal(out, nc.conv2d(x, w, b, (2, 1), 1, (1, 2), 2))
    if _has_cuda_op("conv2d"):
        from numbacnn.cuda import config

        with config.override(simple=True):
            assert np.array_equal(out, _host(nc.conv2d(x, w, b, (2, 1), 1, (1, 2), 2, target="cuda")))
    _check_map(block, thread, layout, threads)


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
@pytest.mark.parametrize("layout,threads", [("simple", 8), ("tiled", (2, 2))])
def test_pool2d_thread_map_equals_kernel(mode, layout, threads):
    from numbacnn.trace.cuda_map import pool2d_thread_map

    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    fn = getattr(nc, f"{mode}_pool2d")
    ref = fn(x, 3, 2, 1, True, False) if mode == "avg" else fn(x, 3, 2, 1, 1, True)
    out, block, thread = pool2d_thread_map(x, mode, (3, 3), (2, 2), (1, 1), (1, 1), ref.shape, False, None,
                                           threads=threads, layout=layout)
    assert np.array_equal(out, ref)
    _check_map(block, thread, layout, threads)


def test_trace_conv2d_cudasim_records_threads():
    if not _has_cuda_op("conv2d"):
        pytest.skip("numbacnn.cuda.conv2d not written yet")
    from numbacnn.trace import trace_conv2d

    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    t = trace_conv2d(x, w, padding=1, target="cudasim", threads=(2, 2), layout="tiled")
    assert_out = nc.conv2d(x, w, padding=1)
    np.testing.assert_allclose(t.out, assert_out, rtol=1e-5, atol=1e-5)
    assert t.meta["layout"] == "tiled"
    assert t.block.shape == (len(t), 3) and t.thread.shape == (len(t), 3)
    n, o, i, j = t.pos.T
    assert np.array_equal(t.block[:, 0] * 2 + t.thread[:, 0], j)
    assert np.array_equal(t.block[:, 1] * 2 + t.thread[:, 1], i)
    assert np.array_equal(t.block[:, 2], n * 2 + o)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_trace_pool2d_cudasim_records_threads(mode):
    if not _has_cuda_op(f"{mode}_pool2d"):
        pytest.skip(f"numbacnn.cuda.{mode}_pool2d not written yet")
    from numbacnn.trace import trace_pool2d

    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    t = trace_pool2d(x, mode, 2, target="cudasim", threads=4, layout="simple")
    assert t.block.shape == (len(t), 3)
    assert np.array_equal(t.block[:, 0] * 4 + t.thread[:, 0], np.arange(len(t)))


def _patch_device_check(monkeypatch):
    """Work around numbacnn._checks.is_device_array missing the simulator's FakeCUDAArray (reported)."""
    import importlib

    from numbacnn import _checks

    orig = _checks.is_device_array

    def is_device_array(x):
        return orig(x) or hasattr(x, "copy_to_host")

    for name in ("numbacnn._checks", "numbacnn.optim", "numbacnn.train", "numbacnn.nn", "numbacnn.conv",
                 "numbacnn.functional", "numbacnn.pool", "numbacnn.parameter"):
        mod = importlib.import_module(name)
        if hasattr(mod, "is_device_array"):
            monkeypatch.setattr(mod, "is_device_array", is_device_array)


def test_tracer_on_a_cuda_model_copies_sampled_steps_to_host(tmp_path, monkeypatch):
    from numbacnn.cuda import config

    with config.override(threads_per_block=8, tile=2):  # few simulated threads per block: fast
        _traced_cuda_training(tmp_path, monkeypatch)


def _traced_cuda_training(tmp_path, monkeypatch):
    from numbacnn import nn
    from numbacnn.optim import SGD
    from numbacnn.trace import Tracer, load
    from numbacnn.train import train_batch

    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 3, rng=0))
    model.to("cudasim")
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 2])
    try:
        train_batch(model, opt, x, y)  # training on the simulator must work before tracing can
    except TypeError:
        _patch_device_check(monkeypatch)
    with Tracer(model, opt, tmp_path / "gpu.nctrace", every=1, samples=2) as tracer:
        for _ in range(2):
            loss, correct = train_batch(model, opt, x, y)
            tracer.log(loss=loss, acc=correct / 2)
    t = load(tmp_path / "gpu.nctrace")
    assert t.manifest["target"] == "cuda" and t.steps.tolist() == [0, 1]
    fm = t.feature_map(0, 0)
    assert isinstance(fm, np.ndarray) and fm.shape == (2, 2, 2, 2)
    # the GPU's step-0 feature map matches the CPU kernels on the same weights
    np.testing.assert_allclose(fm, nc.conv2d(x, t.param("0.weight")[0], t.param("0.bias")[0]),
                               rtol=1e-5, atol=1e-6)
    assert np.isfinite(t.momentum("3.weight")[1]).all()
