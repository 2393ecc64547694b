"""numbacnn._precompile: the dry run finds the kernels a job needs, units of work go to the workers from a queue, and after precompile
the job itself compiles nothing (everything loads from Numba's cache)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import SlowKernel
from numbacnn import _precompile as P
from numbacnn import models, optim, train


def _lenet_warm_up(variant="d2l"):
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)

    def job():
        net = models.lenet(variant=variant, seed=0)
        train.warm_up(net, x, np.array([1, 2]), optim.SGD(net.parameters(), lr=0.9))
    return job


def test_record_lists_the_kernels_without_running_them_and_puts_everything_back():
    import numbacnn.cpu.conv as cpu_conv

    before = cpu_conv.conv2d_forward_kernel2
    empty = np.empty
    net = models.lenet(variant="d2l", seed=0)
    weights = [p.data.copy() for p in net.parameters()]
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    calls = P.record(lambda: train.warm_up(net, x, np.array([1, 2]), optim.SGD(net.parameters(), lr=0.9)))
    names = [f"{d.py_func.__name__}" for d, _ in calls]
    for kernel in ("conv2d_forward_kernel2", "conv2d_forward_kernel3", "conv2d_grad_weight_kernel2",
                   "conv2d_grad_weight_kernel3", "conv2d_grad_input_kernel2", "linear_forward_kernel2",
                   "avg_pool2d_sigmoid_backward_kernel2", "sgd_update_many_kernel1"):
        assert kernel in names
    assert "conv2d_forward_kernel1" not in names  # the launchers took their usual routes on the zeros
    assert len(names) == len(set(zip(names, (t for _, t in calls))))  # each (kernel, types) once
    assert names.count("sgd_update_many_kernel1") == 1  # flat views: one signature for every parameter shape
    # skipped kernels changed nothing (the SGD step did not run), and everything is back in place
    assert all(np.array_equal(w, p.data) for w, p in zip(weights, net.parameters()))
    assert cpu_conv.conv2d_forward_kernel2 is before and np.empty is empty


def test_a_kernel_that_makes_its_output_gets_a_stand_in_array_in_the_dry_run():
    """relu's kernel 2 returns a new array: the dry run records it and gives the launcher zeros of the right shape
    (a stand-in from DRY_RUN_VALUES), neither compiling nor running it."""
    import numbacnn as nb

    x = np.ones((4, 6, 40, 40), np.float32)  # from ONE_THREAD_BELOW elements: kernel 2
    out = []
    calls = P.record(lambda: out.append((nb.relu(x), nb.relu_backward(x, x))))
    assert [d.py_func.__name__ for d, _ in calls] == ["relu_forward_kernel2", "relu_backward_kernel2"]
    (y, gx), = out
    assert y.shape == gx.shape == x.shape and not y.any() and not gx.any()  # the stand-ins, not relu's ones


def test_returns_value_tells_value_kernels_from_in_place_ones():
    from numbacnn.cpu.fast_exp import cross_entropy_forward_kernel2
    from numbacnn.cpu.optim import sgd_update_kernel1

    assert P._returns_value(cross_entropy_forward_kernel2.py_func)
    assert not P._returns_value(sgd_update_kernel1.py_func)


def test_units_keep_kernels_with_a_common_callee_together_and_cover_every_task():
    from numbacnn.cpu import conv_tiles, linear_tiles, optim as cpu_optim

    tasks = [(d, [()]) for d in (linear_tiles.linear_grad_input_kernel2, linear_tiles.linear_grad_weight_kernel2,
                                 conv_tiles.conv2d_forward_kernel2, conv_tiles.conv2d_forward_kernel3,
                                 conv_tiles.conv2d_grad_input_kernel2, cpu_optim.sgd_update_kernel1)]
    units = P.units(tasks)
    assert sorted(id(d) for unit in units for d, _ in unit) == sorted(id(d) for d, _ in tasks)
    unit_of = {d.py_func.__name__: i for i, unit in enumerate(units) for d, _ in unit}
    # both fall back on linear's threaded forward kernel: one worker compiles it once
    assert unit_of["linear_grad_input_kernel2"] == unit_of["linear_grad_weight_kernel2"]
    assert unit_of["sgd_update_kernel1"] == len(units) - 1  # the smallest goes last
    assert len(units) == 5


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="precompile forks")
def test_workers_take_every_unit_once_from_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBACNN_SPEEDUPS", "1")
    log = tmp_path / "log"
    work = [[(SlowKernel(log, i, 0.05), [()])] for i in range(12)]
    compiling = P.Compiling(missing=12, work=work, workers=2)
    assert compiling.join() == 12
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(unit) for unit, _ in lines) == list(range(12))  # each unit once
    assert len({pid for _, pid in lines}) >= 2  # shared out, not one process doing all


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="precompile forks")
def test_cancel_stops_the_workers(tmp_path):
    work = [[(SlowKernel(tmp_path / "log", i, 600), [()])] for i in range(2)]
    compiling = P.Compiling(missing=2, work=work, workers=2)
    pids = [w._pid for w in compiling._workers]
    assert len(pids) == 2 and all(pids)
    compiling.cancel()
    for pid in pids:  # killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert compiling.join() == 2  # nothing left to wait for


def test_switched_off_or_one_core_does_nothing(monkeypatch):
    ran = []
    monkeypatch.setenv("NUMBACNN_SPEEDUPS", "0")
    assert P.precompile(lambda: ran.append(1)) == 0
    monkeypatch.delenv("NUMBACNN_SPEEDUPS")
    assert P.precompile(lambda: ran.append(1), workers=1) == 0
    assert ran == []


COLD_RUN = r"""
import json, sys
import numpy as np
from numba.core import event
sys.path.insert(0, {tests!r})
from test_precompile import _lenet_warm_up
from numbacnn import _precompile

compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__module__)
    def on_end(self, ev):
        pass

job = _lenet_warm_up("modern")
missing = _precompile.precompile(job, workers=2)
with event.install_listener("numba:compile", Listener()):
    job()
print(json.dumps({{"missing": missing, "compiled": compiled, "again": _precompile.precompile(job, workers=2)}}))
"""


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="precompile forks")
def test_after_precompile_on_an_empty_cache_the_job_compiles_nothing(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBACNN_SPEEDUPS="1")
    code = COLD_RUN.format(tests=os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["missing"] >= 10  # modern LeNet: conv, pooling, linear, relu, loss, SGD kernels
    assert [m for m in out["compiled"] if m.startswith("numbacnn")] == []  # all loaded from the cache
    assert out["again"] == 0  # a warm cache: nothing to do
