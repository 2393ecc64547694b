"""Op-level traces: the windows gathered around the real kernels add up to what the kernels wrote."""
import numpy as np
import pytest

import numbacnn as nc
from numbacnn.trace import OpTrace, TraceError, TraceVerificationError, load, trace_conv2d, trace_pool2d
from helpers import assert_close

rng = np.random.default_rng(5)


def _naive_window(x, n, chans, rows, cols):
    """Gather a window from an explicitly zero-padded x (independent of the tracer's clipping)."""
    big = 8
    xp = np.pad(x, ((0, 0), (0, 0), (big, big), (big, big)))
    return xp[n][np.ix_(chans, rows + big, cols + big)]


def test_book_corr2d_windows():
    X = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    K = np.array([[0, 1], [2, 3]], dtype=np.float32).reshape(1, 1, 2, 2)
    t = trace_conv2d(X, K)
    assert len(t) == 4
    assert t.pos.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 1]]
    assert t.window[0, 0].tolist() == [[0, 1], [3, 4]]
    assert t.products[0, 0].tolist() == [[0, 1], [6, 12]]
    assert t.result.tolist() == [19, 25, 37, 43]
    assert not t.pad.any()


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1, flip=False, bias=True),
    dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2, flip=True, bias=True),
    dict(stride=1, padding="same", dilation=1, groups=1, flip=False, bias=False),  # even kernel: asymmetric pad
    dict(stride=2, padding=(2, 0), dilation=2, groups=2, flip=False, bias=False),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_trace_matches_kernel(case):
    case = dict(case)
    x = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    kh, kw = (2, 2) if case["padding"] == "same" else (3, 2)
    w = rng.standard_normal((4, 4 // case["groups"], kh, kw)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if case.pop("bias") else None
    t = trace_conv2d(x, w, b, **case)
    out = nc.conv2d(x, w, b, **case)
    assert np.array_equal(t.out, out)  # the recorded output is the kernel's, bit for bit
    assert np.array_equal(t.result, out.ravel())  # visit order is row-major over (n, o, i, j)
    assert_close(t.sum, t.result, atol=1e-5, rtol=1e-5, name="gathered sums")
    kernel = w[:, :, ::-1, ::-1] if case["flip"] else w
    for m in range(0, len(t), 7):
        n, o, i, j = t.pos[m]
        win = _naive_window(x, n, t.channels[m], t.rows[m], t.cols[m])
        assert np.array_equal(t.window[m], win)
        assert np.array_equal(t.products[m], win * kernel[o])
        inside = (t.rows[m][:, None] >= 0) & (t.rows[m][:, None] < 6) & (t.cols[m] >= 0) & (t.cols[m] < 7)
        assert np.array_equal(t.pad[m], np.broadcast_to(~inside, t.pad[m].shape))


def test_conv2d_padding_is_marked():
    x = np.ones((1, 1, 3, 3), np.float32)
    t = trace_conv2d(x, np.ones((1, 1, 3, 3), np.float32), padding=1)
    corner = t.pad[0, 0]
    assert corner[0].all() and corner[:, 0].all() and not corner[1:, 1:].any()
    assert t.result[0] == 4 and t.result[4] == 9


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_backward_trace_matches_kernel(case):
    case = dict(case)
    x = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    kh, kw = (2, 2) if case["padding"] == "same" else (3, 2)
    w = rng.standard_normal((4, 4 // case["groups"], kh, kw)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if case.pop("bias") else None
    gy = rng.standard_normal(nc.conv2d(x, w, b, **case).shape).astype(np.float32)
    t = trace_conv2d(x, w, b, **case, backward=True, grad_out=gy)
    gx, gw, gb = nc.conv2d_backward(gy, x, w, b, **case)
    assert np.array_equal(t.grad_x, gx) and np.array_equal(t.grad_weight, gw)
    if b is not None:
        assert np.array_equal(t.grad_bias, gb)
    assert np.array_equal(t.gw_result, gw.ravel()) and np.array_equal(t.gx_result, gx.ravel())
    assert_close(t.gw_sum, t.gw_result, atol=1e-4, name="grad_weight terms")
    assert_close(t.gx_sum, t.gx_result, atol=1e-4, name="grad_x terms")
    # every (output element, kernel tap) pair appears exactly once among the grad_x terms
    assert int((~t.gx_pad).sum()) == int((~t.gw_pad).sum())


def test_conv2d_backward_full_convolution_example():
    """1 channel, stride 1: grad_x is the full convolution of grad_out with the kernel."""
    x = np.zeros((1, 1, 3, 3), np.float32)
    w = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 1, 2, 2)
    gy = np.array([[1, 0], [0, 0]], np.float32).reshape(1, 1, 2, 2)
    t = trace_conv2d(x, w, backward=True, grad_out=gy)
    assert t.grad_x[0, 0].tolist() == [[1, 2, 0], [3, 4, 0], [0, 0, 0]]
    m = 4  # grad_x[0, 0, 1, 1]: reached by kernel tap (1, 1) of output (0, 0), ..., tap (0, 0) of output (1, 1)
    assert t.gx_rows[m].tolist() == [1, 0] and t.gx_cols[m].tolist() == [1, 0]
    assert not t.gx_pad[m].any()
    assert t.gx_pad[0].tolist() == [[[False, True], [True, True]]]  # grad_x[0, 0, 0, 0]: only output (0, 0)


def test_verification_catches_a_wrong_kernel(monkeypatch):
    x = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    w = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    real = nc.conv2d
    monkeypatch.setattr(nc, "conv2d", lambda *a, **k: real(*a, **k) + np.float32(1e-2))
    with pytest.raises(TraceVerificationError, match="differ"):
        trace_conv2d(x, w)


def test_cudasim_device_needs_the_simulator():
    with pytest.raises(ValueError, match="NUMBA_ENABLE_CUDASIM"):
        trace_conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)), device="cudasim")


def test_book_pool_examples():
    X = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    t = trace_pool2d(X, "max", 2, stride=1)
    assert t.result.tolist() == [4, 5, 7, 8]
    assert t.chosen.tolist() == [4, 5, 7, 8] and t.chosen_pq.tolist() == [[1, 1]] * 4
    t = trace_pool2d(X, "avg", 2, stride=1)
    assert t.result.tolist() == [2, 3, 5, 6] and t.divisor.tolist() == [4] * 4
    X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    t = trace_pool2d(X, "max", 3, padding=1, stride=2)
    assert t.result.tolist() == [5, 7, 13, 15]
    assert np.isneginf(t.window[0][t.pad[0]]).all() and t.pad[0, 0].all() and not t.pad[3].any()


POOL_CASES = [
    dict(mode="max", kernel_size=2),
    dict(mode="max", kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True),
    dict(mode="min", kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1)),
    dict(mode="avg", kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(mode="avg", kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(mode="avg", kernel_size=2, stride=1, divisor_override=3),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_pool_trace_matches_kernel(case):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    x[0, 0, :2, :2] = 1.0  # ties: the kernel's choice (first in row-major order) is what gets recorded
    t = trace_pool2d(x, **case)
    opts = {k: v for k, v in case.items() if k != "mode"}
    fn = getattr(nc, f"{case['mode']}_pool2d")
    if case["mode"] == "avg":
        out = fn(x, **opts)
        assert_close(t.sum / t.divisor, t.result, name="sum / divisor")
    else:
        out, idx = fn(x, **opts, return_indices=True)
        assert np.array_equal(t.indices, idx) and np.array_equal(t.chosen, idx.ravel())
        n, c = t.pos[:, 0], t.pos[:, 1]
        assert np.array_equal(x[n, c, t.chosen_hw[:, 0], t.chosen_hw[:, 1]], t.result)
        m = np.arange(len(t))
        assert np.array_equal(t.window[m, t.chosen_pq[:, 0], t.chosen_pq[:, 1]], t.result)
    assert np.array_equal(t.out, out) and np.array_equal(t.result, out.ravel())


def test_pool_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        trace_pool2d(np.ones((1, 1, 2, 2)), "median", 2)


def test_op_trace_round_trip(tmp_path):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    t = trace_conv2d(x, w, np.ones(3, np.float32), padding=1, stride=2)
    path = tmp_path / "conv.npz"
    t.save(path)
    for back in (OpTrace.load(path), load(path)):
        assert back.op == "conv2d" and back.meta["stride"] == [2, 2] and back.meta["padding"] == [1, 1, 1, 1]
        assert sorted(back.arrays) == sorted(t.arrays)
        for k, v in t.arrays.items():
            assert np.array_equal(back.arrays[k], v) and back.arrays[k].dtype == v.dtype, k


def test_op_trace_bad_files(tmp_path):
    t = trace_conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))
    good = tmp_path / "good.npz"
    t.save(good)
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match="truncated"):
        OpTrace.load(tmp_path / "trunc.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello, not a zip")
    with pytest.raises(TraceError):
        OpTrace.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(TraceError, match="not a numbacnn trace"):
        OpTrace.load(tmp_path / "plain.npz")
    newer = dict(np.load(good))
    newer["__header__"] = np.array(str(newer["__header__"]).replace('"version": 1', '"version": 99'))
    np.savez(tmp_path / "newer.npz", **newer)
    with pytest.raises(TraceError, match="newer"):
        OpTrace.load(tmp_path / "newer.npz")
    assert issubclass(TraceError, ValueError)
