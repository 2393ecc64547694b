"""The CUDA launch animation (numbacnn.viz.cuda_grid) draws what the observed kernel did, frame by frame."""
import numpy as np
import pytest

import numbacnn as nc
from numbacnn import viz
from numbacnn.cuda import config
from numbacnn.trace import trace_conv2d, trace_pool2d

pytestmark = pytest.mark.cudasim

rng = np.random.default_rng(3)
X = rng.integers(0, 3, size=(1, 1, 7, 8)).astype(np.float32)  # 5 x 6 outputs of a 3 x 3 kernel
W = np.array([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], np.float32)


def _texts(grid):
    return np.vectorize(lambda t: t.get_text())(grid)


def test_tiled_conv_frames_load_barrier_compute_write():
    with config.override(tile=4):
        trace = trace_conv2d(X, W, device="cudasim", kernel=2)
    anim = viz.cuda_grid(trace, dpi=40)
    frames = anim.artists["frames"]
    assert frames == [(b, p) for b in range(2 * 2) for p in range(3)]  # 2 x 2 tiles of 4 x 4; 3 phases each
    anim.show(0)  # block (0, 0), phase 0: the patch is copied into shared memory
    assert "copy a tile from global into shared memory" in anim.artists["caption"].get_text()
    shared = _texts(anim.artists["shared_texts"])
    patch = X[0, 0, :6, :6]  # block (0, 0): T + KH - 1 = 6 rows and columns, no padding
    assert np.array_equal(shared[:6, :6].astype(float), patch)
    assert np.array_equal(shared[7:10, :3].astype(float), W[0, 0])  # then the weights
    assert "x 36, w 9, b 16" in anim.artists["info"].get_text()
    anim.show(1)
    # compute phase: each of the 16 threads reads 9 patch values and 9 weights from shared memory, nothing global
    assert (_texts(anim.artists["thread_texts"]) == "0/18").all()
    assert "after cuda.syncthreads() #1" in anim.artists["caption"].get_text()
    assert "compute from shared memory" in anim.artists["caption"].get_text()
    anim.show(2)
    out = _texts(anim.artists["texts"])
    assert out[0, 0] == "0,0" and out[3, 3] == "3,3" and out[0, 3] == "3,0"  # threadIdx (x, y) wrote (i, j)
    assert out[4, 0] == ""  # the block below has not run yet
    anim.show(len(frames) - 1)
    out = _texts(anim.artists["texts"])
    y = nc.conv2d(X, W)[0, 0]
    assert out[0, 0] == str(int(y[0, 0]))  # earlier blocks show the values their threads wrote


def test_formula_kernel_frames_and_counts():
    with config.override(threads_per_block=8):
        trace = trace_conv2d(X, W, device="cudasim", kernel=1)
    anim = viz.cuda_grid(trace, compare={1: {"global reads": 400, "shared reads": 0},
                                         2: {"global reads": 100, "shared reads": 300}}, dpi=40)
    assert anim.artists["frames"] == [(b, 0) for b in range(4)]  # 30 outputs / 8 threads: 4 blocks, no barrier
    anim.show(0)
    info = anim.artists["info"].get_text()
    assert "tiling: 4.0x fewer global reads" in info
    assert "read their inputs from global memory" in anim.artists["caption"].get_text()
    assert np.array_equal(anim.artists["block_of_cell"].ravel(), np.arange(30) // 8)


def test_pool_and_refusals():
    trace = trace_pool2d(X, "max", 2, device="cudasim")
    anim = viz.cuda_grid(trace, dpi=40)
    assert len(anim) >= 1
    with pytest.raises(ValueError, match="device='cudasim'"):
        viz.cuda_grid(trace_pool2d(X, "max", 2), dpi=40)
    with pytest.raises(ValueError, match="one input and one output plane"):
        viz.cuda_grid(trace_conv2d(np.concatenate([X, X]), W, device="cudasim"), dpi=40)


def test_tiled_linear_shows_both_tiles_per_k_step():
    from numbacnn.trace.ops import trace_linear

    x = rng.integers(0, 3, size=(5, 6)).astype(np.float32)
    w = rng.integers(-1, 2, size=(3, 6)).astype(np.float32)
    with config.override(tile=4):
        trace = trace_linear(x, w, device="cudasim", kernel=2)
    np.testing.assert_array_equal(trace.out, x @ w.T)
    anim = viz.cuda_grid(trace, dpi=40)
    assert anim.artists["frames"] == [(b, p) for b in range(2) for p in range(5)]  # 2 k-steps of 4, then write
    anim.show(2)  # block 0, second load: x[0:4, 4:8] and w[0:4, 4:8], zero beyond k = 6 and beyond w's 3 rows
    shared = _texts(anim.artists["shared_texts"])
    assert (shared[4] == "").all()  # the gap between the two tiles
    tiles = np.concatenate([shared[:4], shared[5:]]).astype(float)
    np.testing.assert_array_equal(tiles[:4, :2], x[:4, 4:6])
    np.testing.assert_array_equal(tiles[4:7, :2], w[:, 4:6])
    assert (tiles[:, 2:] == 0).all() and (tiles[7] == 0).all()
