"""The default CPU kernels give the same bits as when tests/golden/bitwise.npz was made (see gen_bitwise.py)."""
import numpy as np
import pytest
from golden.format import load_cases
from golden.gen_bitwise import cases, cpu_fingerprint

_SAVED = {name: arrays for name, _, arrays in load_cases("bitwise")}
_CPU = str(_SAVED.pop("__cpu__")["fingerprint"])


@pytest.fixture(scope="module")
def computed():
    if cpu_fingerprint() != _CPU:
        pytest.skip("tests/golden/bitwise.npz was made on another CPU (FMA and vector width decide the bits)")
    return dict(cases())


def test_every_case_is_computed(computed):
    assert sorted(computed) == sorted(_SAVED)


@pytest.mark.parametrize("name", sorted(_SAVED))
def test_bit_identical(computed, name):
    for field, want in _SAVED[name].items():
        got = np.asarray(computed[name][field])
        assert got.dtype == want.dtype and got.shape == want.shape, f"{name}/{field}: {got.dtype}{got.shape}"
        assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f"), (
            f"{name}/{field}: {int((got != want).sum())} elements changed bits")
