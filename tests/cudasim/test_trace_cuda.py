"""The CUDA thread maps in op traces (trace_conv2d / trace_pool2d with device="cudasim"), checked two ways.

The traces get their maps from numbacnn.trace.cuda_observe. ``observed_threads`` below is a second, minimal
watcher written independently for this test: for every element a simulated kernel writes into a 4-D array, the
blockIdx and threadIdx of the thread that wrote it (the simulator runs each CUDA thread as a Python thread, so the
writer is ``threading.current_thread()``). Both must agree, and both must follow the launch layout's formula.
"""
import contextlib
import threading

import numpy as np
import pytest

import numbacnn as nc

pytestmark = pytest.mark.cudasim

rng = np.random.default_rng(11)


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
    """The launch layout's formula: "simple" 1-D blocks in the output's row-major order, "tiled" 2-D tiles of (i, j)
    with blockIdx.z = n * P + p (numbacnn/cuda/conv.py's conv2d_forward_kernel2)."""
    N, P, HO, WO, _ = block.shape
    n, p, i, j = np.meshgrid(*[np.arange(s) for s in (N, P, HO, WO)], indexing="ij")
    assert (block >= 0).all() and (thread >= 0).all()
    assert (thread[..., 2] == 0).all()
    if layout == "simple":
        t = ((n * P + p) * HO + i) * WO + j
        assert np.array_equal(block[..., 0] * threads + thread[..., 0], t)
        assert (block[..., 1:] == 0).all() and (thread[..., 1] == 0).all()
    else:
        assert np.array_equal(block[..., 0] * threads + thread[..., 0], j)
        assert np.array_equal(block[..., 1] * threads + thread[..., 1], i)
        assert np.array_equal(block[..., 2], n * P + p)


CONV_CASES = [  # N and O both > 1 and different, so blockIdx.z = n * O + o differs from o * N + n
    dict(x=(2, 4, 5, 7), w=(6, 2, 3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
    dict(x=(3, 1, 6, 6), w=(2, 1, 3, 3), stride=1, padding=0, dilation=1, groups=1),
]


@pytest.mark.parametrize("kernel,layout", [(1, "simple"), (2, "tiled")])
@pytest.mark.parametrize("case", CONV_CASES, ids=["grouped", "plain"])
def test_trace_conv2d_thread_map_is_what_the_real_kernel_did(case, kernel, layout):
    from numbacnn.cuda import config
    from numbacnn.trace import trace_conv2d

    x = rng.standard_normal(case["x"]).astype(np.float32)
    w = rng.standard_normal(case["w"]).astype(np.float32)
    b = rng.standard_normal(case["w"][0]).astype(np.float32)
    opts = (case["stride"], case["padding"], case["dilation"], case["groups"])
    with config.override(threads_per_block=8, tile=2):
        t = trace_conv2d(x, w, b, *opts, device="cudasim", kernel=kernel)
        with observed_threads() as writers:
            y = nc.conv2d(x, w, b, *opts, device="cudasim", kernel=kernel)
            real_block, real_thread = writers(y)
    np.testing.assert_allclose(t.out, nc.conv2d(x, w, b, *opts), rtol=1e-5, atol=1e-5)
    assert np.array_equal(t.block, real_block.reshape(-1, 3)) and np.array_equal(t.thread, real_thread.reshape(-1, 3))
    _check_layout(real_block, real_thread, layout, 8 if layout == "simple" else 2)
    assert t.meta["cuda"]["kernel"] == f"conv2d_forward_kernel{kernel}"
    writes = t.access[(t.access[:, 5] == 1)]
    names = [a[0] for a in t.meta["cuda"]["arrays"]]
    assert (writes[:, 0] == names.index("y")).sum() == t.out.size  # one write per output element
    assert t.meta["cuda"]["counts"]["races"] == 0


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
def test_trace_pool2d_thread_map_is_what_the_real_kernel_did(mode):
    from numbacnn.cuda import config
    from numbacnn.trace import trace_pool2d

    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    fn = getattr(nc, f"{mode}_pool2d")
    with config.override(threads_per_block=8):
        t = trace_pool2d(x, mode, 3, 2, 1, device="cudasim")
        with observed_threads() as writers:
            real_block, real_thread = writers(fn(x, 3, 2, 1, device="cudasim"))
    assert np.array_equal(t.block, real_block.reshape(-1, 3)) and np.array_equal(t.thread, real_thread.reshape(-1, 3))
    _check_layout(real_block, real_thread, "simple", 8)
    assert np.array_equal(t.out, fn(x, 3, 2, 1))


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
