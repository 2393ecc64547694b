"""One comparison helper for every test: shape, dtype, max difference and the first mismatches."""
from __future__ import annotations

import importlib.util

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
