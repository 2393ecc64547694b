import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py and tests/golden/ importable


def pytest_collection_modifyitems(config, items):
    """CUDA-simulator tests run in their own process (tests/cudasim); skip them in a plain run.

    NUMBACNN_CUDASIM_TESTS_ON_GPU=1 runs the same tests on a real GPU instead.
    """
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or os.environ.get("NUMBACNN_CUDASIM_TESTS_ON_GPU") == "1":
        return
    skip = pytest.mark.skip(reason="runs in its own process with NUMBA_ENABLE_CUDASIM=1 (see .ci/run)")
    for item in items:
        if "cudasim" in item.keywords:
            item.add_marker(skip)
