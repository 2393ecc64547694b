"""Fixtures for the CUDA tests: small blocks, and both kernel variants (simple and fast).

The tests here run under Numba's simulator (NUMBA_ENABLE_CUDASIM=1, its own process) and, unchanged, on a real GPU.
"""
import pytest

SMALL = dict(threads_per_block=8, tile=4)  # tiny inputs still span several blocks


@pytest.fixture(params=["simple", "fast"])
def variant(request):
    """Run the test once with every op's teaching kernel (kernel1) and once with the fastest kernel."""
    from numbacnn.cuda import config

    with config.override(simple=request.param == "simple", **SMALL):
        yield request.param


@pytest.fixture
def small_blocks():
    from numbacnn.cuda import config

    with config.override(**SMALL):
        yield
