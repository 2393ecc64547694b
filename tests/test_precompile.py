"""numbacnn._precompile: the dry run finds the kernels a job needs, the shares split them, and after precompile
the job itself compiles nothing (everything loads from Numba's cache)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

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
                   "avg_pool2d_backward_kernel2", "sgd_update_kernel1"):
        assert kernel in names
    assert "conv2d_forward_kernel1" not in names  # the launchers took their usual routes on the zeros
    assert len(names) == len(set(zip(names, (t for _, t in calls))))  # each (kernel, types) once
    assert names.count("sgd_update_kernel1") == 1  # flat views: one signature for every parameter shape
    # skipped kernels changed nothing (the SGD step did not run), and everything is back in place
    assert all(np.array_equal(w, p.data) for w, p in zip(weights, net.parameters()))
    assert cpu_conv.conv2d_forward_kernel2 is before and np.empty is empty


def test_returns_value_tells_value_kernels_from_in_place_ones():
    from numbacnn.cpu.fast_exp import cross_entropy_forward_kernel2
    from numbacnn.cpu.optim import sgd_update_kernel1

    assert P._returns_value(cross_entropy_forward_kernel2.py_func)
    assert not P._returns_value(sgd_update_kernel1.py_func)


def test_shares_keep_kernels_with_a_common_callee_together_and_cover_every_task():
    from numbacnn.cpu import conv_tiles, linear_tiles, optim as cpu_optim

    tasks = [(d, [()]) for d in (linear_tiles.linear_grad_input_kernel2, linear_tiles.linear_grad_weight_kernel2,
                                 conv_tiles.conv2d_forward_kernel2, conv_tiles.conv2d_forward_kernel3,
                                 conv_tiles.conv2d_grad_input_kernel2, cpu_optim.sgd_update_kernel1)]
    parts = P.shares(tasks, 2)
    assert sorted(id(d) for part in parts for d, _ in part) == sorted(id(d) for d, _ in tasks)
    owner = {d.py_func.__name__: i for i, part in enumerate(parts) for d, _ in part}
    assert owner["linear_grad_input_kernel2"] == owner["linear_grad_weight_kernel2"]  # both compile matmul_tiles
    assert all(parts)  # both workers get work


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
