"""Shared helpers of the API fuzz files (tests/fuzz/api_cases.py): seeded arrays and ``expect_error``."""
import numpy as np
import pytest


def r(*shape, dtype=np.float32, seed=0):
    """A seeded standard-normal array (the issue's ``r(*shape)``)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def expect_error(fn, exc, *needles):
    """``fn()`` raises ``exc`` (exactly that class or a subclass) with a one-line message holding each needle
    (the argument's name, the bad value): the contract of every public API error. Returns the message."""
    with pytest.raises(Exception) as info:
        fn()
    err = info.value
    assert isinstance(err, exc), f"expected {exc.__name__}, got {type(err).__name__}: {err}"
    msg = str(err)
    assert msg and "\n" not in msg.strip(), f"the message must be one line, got {msg!r}"
    for needle in needles:
        assert str(needle) in msg, f"the message must name {needle!r}, got {msg!r}"
    return msg


def same_values(got, want, rtol, atol=0.0, what=""):
    """Equal within tolerance, with NaN and inf in the same places (and infinities of the same sign)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN placement")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
