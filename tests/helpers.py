"""Helpers shared by the tests: ``assert_close`` (shape, dtype, max difference and the first mismatches) and
``small_traced_run`` (a tiny traced training run for the trace CLI's tests), ``SlowKernel`` (a stand-in kernel for
numbacnn._precompile's workers)."""
from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

HAS_TORCH = importlib.util.find_spec("torch") is not None


def assert_close(actual, expected, *, atol=1e-5, rtol=1e-5, name="array", check_dtype=False):
    """Fail unless |actual - expected| <= atol + rtol * |expected| everywhere (NaNs must match)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != expected {e.shape}"
    if check_dtype:
        assert a.dtype == e.dtype, f"{name}: dtype {a.dtype} != expected {e.dtype}"
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN; equal infinities are caught just below
        bad = (np.abs(a64 - e64) > atol + rtol * np.abs(e64)) & ~(nan_a & nan_e) & ~(a64 == e64)
    bad |= nan_a != nan_e
    if bad.any():
        idx = np.argwhere(bad)[:5]
        lines = [f"  at {tuple(int(v) for v in i)}: got {a64[tuple(i)]!r}, expected {e64[tuple(i)]!r}" for i in idx]
        diff = np.nanmax(np.abs(a64 - e64)) if a.size else 0.0
        raise AssertionError(f"{name}: {int(bad.sum())} of {a.size} elements differ (max |diff| {diff:.3g}, "
                             f"atol {atol}, rtol {rtol}):\n" + "\n".join(lines))


def small_traced_run(path):
    """Write a traced run to ``path``: a conv-ReLU-linear net, 5 SGD steps of 4 examples, recorded every 2nd step
    with 2 samples (3 recorded steps). Returns ``path``."""
    from numbacnn import nn
    from numbacnn.optim import SGD
    from numbacnn.trace import Tracer
    from numbacnn.train import train_batch

    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=0))
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    with Tracer(model, opt, path, every=2, samples=2, meta={"batch_size": 4, "epochs": 1}) as tracer:
        for _ in range(5):
            loss, correct = train_batch(model, opt, rng.standard_normal((4, 1, 6, 6)).astype(np.float32),
                                        rng.integers(0, 3, 4))
            tracer.log(loss=loss, acc=correct / 4)
    return path


class SlowKernel:
    """Stands in for a Numba dispatcher in numbacnn._precompile's work: compile() appends "unit pid" to ``log``
    and takes ``seconds``."""

    def __init__(self, log, unit, seconds):
        self.log, self.unit, self.seconds = log, unit, seconds

    def compile(self, types):
        with open(self.log, "a") as f:
            f.write(f"{self.unit} {os.getpid()}\n")
        time.sleep(self.seconds)
