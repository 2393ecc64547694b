"""The CUDA thread map (numbacnn.trace.cuda_map) against the real kernels, watched while they run in the simulator.

``observed_threads`` records, for every element a simulated kernel writes into a 4-D array, the blockIdx and
threadIdx of the thread that wrote it (the simulator runs each CUDA thread as a Python thread, so the writer is
``threading.current_thread()``). The map the traces draw must equal what the real launchers and kernels do.
"""
import contextlib
import threading

import numpy as np
import pytest

import numbacnn as nc
from numbacnn.geometry import conv_geometry

pytestmark = pytest.mark.cudasim

rng = np.random.default_rng(11)


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def _on_simulator(fn):
    """The op's keyword that runs it under the simulator."""
    return {"device": "cudasim"}


@contextlib.contextmanager
def observed_threads():
    """Yield ``writers(device_array)``: (block, thread) int arrays of shape (*array.shape, 3), the (x, y, z) of
    blockIdx / threadIdx of the thread that wrote each element inside a kernel (-1: never written).
    An element written twice, or by two threads, fails the test."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeWithinKernelCUDAArray

    log = {}  # id(FakeCUDAArray) -> (the array, kept alive so ids are not reused; [(index, block, thread)])
    original = FakeWithinKernelCUDAArray.__setitem__

    def setitem(self, idx, value):
        me = threading.current_thread()
        if isinstance(idx, tuple) and len(idx) == 4 and hasattr(me, "blockIdx"):
            b, t = me.blockIdx, me.threadIdx
            log.setdefault(id(self._item), (self._item, []))[1].append(
                (tuple(int(v) for v in idx), (b.x, b.y, b.z), (t.x, t.y, t.z)))
        original(self, idx, value)

    def writers(array):
        shape = tuple(array.shape)
        block = np.full(shape + (3,), -1, np.int64)
        thread = np.full(shape + (3,), -1, np.int64)
        for idx, b, t in log.get(id(array), (None, []))[1]:
            assert (block[idx] == -1).all(), f"element {idx} written twice: by {tuple(block[idx])} and {b}"
            block[idx], thread[idx] = b, t
        return block, thread

    FakeWithinKernelCUDAArray.__setitem__ = setitem
    try:
        yield writers
    finally:
        FakeWithinKernelCUDAArray.__setitem__ = original


def _check_layout(block, thread, layout, threads):
    """The launch layout's formula, as cuda_map's docstring states it."""
    N, P, HO, WO, _ = block.shape
    n, p, i, j = np.meshgrid(*[np.arange(s) for s in (N, P, HO, WO)], indexing="ij")
    assert (block >= 0).all() and (thread >= 0).all()
    assert (thread[..., 2] == 0).all()
    if layout == "simple":
        t = ((n * P + p) * HO + i) * WO + j
        assert np.array_equal(block[..., 0] * threads + thread[..., 0], t)
        assert (block[..., 1:] == 0).all() and (thread[..., 1] == 0).all()
    else:
        ty, tx = (threads, threads) if isinstance(threads, int) else threads
        assert np.array_equal(block[..., 0] * tx + thread[..., 0], j)
        assert np.array_equal(block[..., 1] * ty + thread[..., 1], i)
        assert np.array_equal(block[..., 2], n * P + p)


def _layout_and_threads(op):
    from numbacnn.cuda import config
    from numbacnn.trace.cuda_map import default_layout

    layout = default_layout(op)
    return layout, (config.threads_per_block if layout == "simple" else config.tile)


CONV_CASES = [  # N and O both > 1 and different, so blockIdx.z = n * O + o differs from o * N + n
    dict(x=(2, 4, 5, 7), w=(6, 2, 3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
    dict(x=(3, 1, 6, 6), w=(2, 1, 3, 3), stride=1, padding=0, dilation=1, groups=1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=["grouped", "plain"])
def test_conv2d_thread_map_is_what_the_real_kernels_do(variant, case):
    """kernel1 (variant simple) and kernel2 (fast) run under observation; the map must name the same threads."""
    from numbacnn.trace.cuda_map import conv2d_thread_map

    x = rng.standard_normal(case["x"]).astype(np.float32)
    w = rng.standard_normal(case["w"]).astype(np.float32)
    b = rng.standard_normal(case["w"][0]).astype(np.float32)
    opts = (case["stride"], case["padding"], case["dilation"], case["groups"])
    with observed_threads() as writers:
        y = nc.conv2d(x, w, b, *opts, **_on_simulator(nc.conv2d))
        real_block, real_thread = writers(y)
    geo = conv_geometry(x.shape, w.shape, b.shape, *opts)
    out, block, thread = conv2d_thread_map(x, w, b, geo)
    np.testing.assert_allclose(out, nc.conv2d(x, w, b, *opts), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_host(y), out, rtol=1e-5, atol=1e-5)
    assert np.array_equal(block, real_block), "cuda_map's blockIdx differ from the real kernel's"
    assert np.array_equal(thread, real_thread), "cuda_map's threadIdx differ from the real kernel's"
    _check_layout(real_block, real_thread, *_layout_and_threads("conv2d"))


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
def test_pool2d_thread_map_is_what_the_real_kernels_do(small_blocks, mode):
    from numbacnn.trace.cuda_map import pool2d_thread_map

    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    fn = getattr(nc, f"{mode}_pool2d")
    args = (x, 3, 2, 1, True, False) if mode == "avg" else (x, 3, 2, 1, 1, True)
    with observed_threads() as writers:
        y = fn(*args, **_on_simulator(fn))
        real_block, real_thread = writers(y)
    ref = fn(*args)
    out, block, thread = pool2d_thread_map(x, mode, (3, 3), (2, 2), (1, 1), (1, 1), ref.shape, False, None)
    assert np.array_equal(out, ref) and np.array_equal(_host(y), ref)
    assert np.array_equal(block, real_block) and np.array_equal(thread, real_thread)
    _check_layout(real_block, real_thread, *_layout_and_threads("pool2d"))


@pytest.mark.parametrize("layout,threads", [("simple", 32), ("tiled", (2, 4))])
def test_conv2d_thread_map_with_chosen_threads(layout, threads):
    """A layout and block size picked by hand (the CLI's --layout/--threads): same sums, the layout's formula."""
    from numbacnn.trace.cuda_map import conv2d_thread_map

    x = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    geo = conv_geometry(x.shape, w.shape, b.shape, (2, 1), 1, (1, 2), 2)
    out, block, thread = conv2d_thread_map(x, w, b, geo, threads=threads, layout=layout)
    assert np.array_equal(out, nc.conv2d(x, w, b, (2, 1), 1, (1, 2), 2))
    _check_layout(block, thread, layout, threads)


def test_trace_conv2d_cudasim_records_the_real_threads(small_blocks):
    from numbacnn.trace import trace_conv2d

    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    t = trace_conv2d(x, w, padding=1, device="cudasim")
    np.testing.assert_allclose(t.out, nc.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-5)
    with observed_threads() as writers:
        real_block, real_thread = writers(nc.conv2d(x, w, padding=1, **_on_simulator(nc.conv2d)))
    assert t.meta["layout"] == _layout_and_threads("conv2d")[0]
    assert np.array_equal(t.block, real_block.reshape(-1, 3)) and np.array_equal(t.thread, real_thread.reshape(-1, 3))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_trace_pool2d_cudasim_records_the_real_threads(small_blocks, mode):
    from numbacnn.trace import trace_pool2d

    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    t = trace_pool2d(x, mode, 2, device="cudasim")
    fn = getattr(nc, f"{mode}_pool2d")
    with observed_threads() as writers:
        real_block, real_thread = writers(fn(x, 2, **_on_simulator(fn)))
    assert np.array_equal(t.block, real_block.reshape(-1, 3)) and np.array_equal(t.thread, real_thread.reshape(-1, 3))


def test_tracer_on_a_cuda_model_copies_sampled_steps_to_host(tmp_path):
    from numbacnn import nn
    from numbacnn.cuda import config
    from numbacnn.optim import SGD
    from numbacnn.trace import Tracer, load
    from numbacnn.train import train_batch

    with config.override(threads_per_block=8, tile=2):  # few simulated threads per block: fast
        model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 3, rng=0))
        model.to("cudasim")
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
        y = np.array([0, 2])
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
