"""The observer of the real CUDA kernels (numbacnn.trace.cuda_observe, numbacnn.trace.cuda_check) under the simulator.

Broken kernels (tests/cudasim/broken_kernels.py) must be flagged for the right reason, their correct twins and
every shipped kernel must pass clean, and the counts must be the ones worked out by hand.
"""
import os
import sys

import numpy as np
import pytest
from numba import cuda

sys.path.insert(0, os.path.dirname(__file__))

import broken_kernels as bk  # noqa: E402
from numbacnn.trace.cuda_check import Sizes, check, ops  # noqa: E402
from numbacnn.trace.cuda_observe import observe  # noqa: E402

pytestmark = pytest.mark.cudasim

N = 20  # elements: 3 blocks of bk.T = 8 threads, the last one partly idle


def _run(kernel, n_out=N):
    x = cuda.to_device(np.arange(N, dtype=np.float32))
    out = cuda.to_device(np.zeros(n_out, np.float32))
    with observe() as run:
        kernel[(N + bk.T - 1) // bk.T, bk.T](x, out)
    return run, out.copy_to_host()


def test_correct_tiled_kernel_is_clean_and_counted():
    run, out = _run(bk.neighbour_sum)
    assert run.problems() == []
    c = run.counts()
    assert (c["races"], c["uninitialised shared reads"], c["out-of-bounds"]) == (0, 0, 0)
    # 24 threads: each writes its tile slot and reads two; 20 read x and write out
    assert (c["global reads"], c["global writes"], c["shared writes"], c["shared reads"]) == (20, 20, 24, 40)
    x = np.arange(N, dtype=np.float32)
    tiles = np.concatenate([x, np.zeros(4, np.float32)]).reshape(3, bk.T)
    np.testing.assert_array_equal(out, (tiles + np.roll(tiles, -1, axis=1)).ravel()[:N])
    (launch,) = run.launches
    assert launch.name == "neighbour_sum" and launch.grid == (3, 1, 1) and launch.block == (bk.T, 1, 1)
    table = launch.table()
    shared = np.array([a.space == "shared" for a in launch.arrays])[table["code"]]
    assert set(table["phase"][shared & table["write"]]) == {0} and set(table["phase"][shared & ~table["write"]]) \
        == {1}, "the tile is written before the barrier (phase 0) and read after it (phase 1)"


def test_missing_syncthreads_is_caught():
    run, _ = _run(bk.neighbour_sum_without_sync)
    c = run.counts()
    assert c["races"] + c["uninitialised shared reads"] > 0, "a tiled kernel without its barrier must be flagged"
    assert c["out-of-bounds"] == 0
    assert any("shared tile" in p and ("race" in p or "no thread wrote" in p) for p in run.problems())


def test_missing_bounds_guard_is_caught_and_the_run_goes_on():
    run, out = _run(bk.copy_without_guard)
    c = run.counts()
    assert c["out-of-bounds"] == 2 * 4, "4 extra threads each read x and write out past the end"
    assert c["races"] == 0
    assert any(p.startswith("out-of-bounds read of global x[20]") for p in run.problems())
    np.testing.assert_array_equal(out, np.arange(N, dtype=np.float32))  # in-bounds work still done
    good, _ = _run(bk.copy)
    assert good.problems() == [] and good.counts()["out-of-bounds"] == 0


def test_two_threads_writing_one_element_is_a_race_unless_atomic():
    run, _ = _run(bk.pair_sum_two_writers, N // 2)
    assert run.counts()["races"] == N // 2
    assert all(p.startswith("race on global out[") and "writes" in p for p in run.problems()[:3])
    atomic, out = _run(bk.pair_sum_atomic, N // 2)
    assert atomic.counts()["races"] == 0 and atomic.problems() == []
    np.testing.assert_array_equal(out, np.arange(N, dtype=np.float32).reshape(-1, 2).sum(axis=1))


def test_reading_another_blocks_output_is_a_race_in_any_phase():
    run, _ = _run(bk.read_other_blocks_output)
    assert run.counts()["races"] > 0
    assert any("race on global out[" in p for p in run.problems())


def test_negative_index_is_out_of_bounds():
    @cuda.jit
    def shift_left(x, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = x[i - 1]  # i = 0 reads x[-1]: NumPy would wrap, a GPU reads the word before the array

    run, _ = _run(shift_left)
    assert run.counts()["out-of-bounds"] == 1
    assert run.problems()[0].startswith("out-of-bounds read of global x[-1]")


@pytest.mark.parametrize("op,kernel", [(op, k) for op, ks in sorted(ops().items()) for k in ks])
def test_every_shipped_kernel_passes_the_check(op, kernel):
    report = check(op, kernel)
    assert report.matches_cpu, f"{op} kernel {kernel} differs from the CPU kernels by {report.max_error}"
    assert report.problems == [] and report.ok, report.problems
    assert report.counts["global writes"] > 0 and report.launches


def test_tiled_conv_reads_global_memory_less_than_the_formula_kernel():
    """conv2d on 2 x 2 x 7 x 7 with 3 x 2 x 3 x 3 weights, padding 1 (294 outputs, each a sum of 18 taps):
    kernel 1 reads b[o] once and x and w once per tap that lands inside the image (the padding taps read nothing);
    kernel 2 loads a patch and w[o, c] into shared memory once per block and channel."""
    one, two = check("conv2d", 1), check("conv2d", 2)
    taps_inside = sum(max(0, min(7, i + 2) - max(0, i - 1)) for i in range(7)) ** 2  # per (n, o, c): 19 * 19
    assert one.counts["global reads"] == 294 + 2 * (2 * 3 * 2) * taps_inside
    assert two.counts["global reads"] < one.counts["global reads"] / 4
    assert two.counts["shared reads"] > 0 and one.counts["shared reads"] == 0
    assert one.counts["global writes"] == two.counts["global writes"] == 294


def test_writers_map_is_the_launch_layout():
    """Who wrote y[n, o, i, j]: kernel 1 counts threads in y's row-major order; kernel 2 tiles (i, j) by 4 x 4."""
    import numbacnn as nc
    from numbacnn.cuda import config

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    n, o, i, j = np.meshgrid(*[np.arange(s) for s in (2, 3, 4, 5)], indexing="ij")
    with config.override(threads_per_block=16, tile=4):
        with observe() as run:
            y1 = nc.conv2d(x, w, device="cudasim", kernel=1)
        block, thread = run.writers(y1)
        t = ((n * 3 + o) * 4 + i) * 5 + j
        assert np.array_equal(block[..., 0] * 16 + thread[..., 0], t)
        with observe() as run:
            y2 = nc.conv2d(x, w, device="cudasim", kernel=2)
        block, thread = run.writers(y2)
    assert np.array_equal(block[..., 0] * 4 + thread[..., 0], j)
    assert np.array_equal(block[..., 1] * 4 + thread[..., 1], i)
    assert np.array_equal(block[..., 2], n * 3 + o)


def test_sizes_change_the_input():
    small = check("relu", 1, Sizes(batch=1, channels=1, size=(3, 3)))
    assert small.counts["global writes"] == 9


def test_cli_exits_1_and_names_the_problem_when_a_shipped_kernel_breaks(monkeypatch):
    """`numbacnn cuda-check relu` with relu's kernel swapped for one that lost its bounds guard."""
    from click.testing import CliRunner

    from numbacnn.cli import main
    from numbacnn.cuda import functional

    @cuda.jit
    def relu_forward_kernel1(x, y):
        i = cuda.grid(1)
        y[i] = max(x[i], 0.0)  # no `if i < y.size`: the last block's spare threads run off the end

    monkeypatch.setattr(functional, "relu_forward_kernel1", relu_forward_kernel1)
    result = CliRunner().invoke(main, ["cuda-check", "relu", "--size", "5x5"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert any("PROBLEM: out-of-bounds read of global x[" in line for line in lines)
    assert lines[-1] == "Error: 1 kernel(s) failed the check: relu kernel1"
    import re

    assert re.search(r"relu kernel1: .*, 0 races, (\d+) out-of-bounds, 0 uninitialised shared reads$", lines[-2]).group(1) == str(2 * 28)
