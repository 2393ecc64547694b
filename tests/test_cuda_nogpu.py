"""Without a GPU (and without the simulator), device='cuda' fails with a clear error naming the two ways on."""
import os

import numpy as np
import pytest

import numbacnn as nc


def _has_gpu():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


pytestmark = pytest.mark.skipif(_has_gpu(), reason="a GPU (or the simulator) is present")

x4 = np.ones((1, 1, 4, 4), np.float32)
CALLS = {
    "conv2d": lambda: nc.conv2d(x4, np.ones((1, 1, 3, 3)), device="cuda"),
    "conv2d_backward": lambda: nc.conv2d_backward(np.ones((1, 1, 2, 2)), x4, np.ones((1, 1, 3, 3)), device="cuda"),
    "linear": lambda: nc.linear(np.ones((2, 3)), np.ones((4, 3)), device="cuda"),
    "relu": lambda: nc.relu(x4, device="cuda"),
    "cross_entropy": lambda: nc.cross_entropy(np.ones((2, 3)), [0, 1], device="cuda"),
    "max_pool2d": lambda: nc.max_pool2d(x4, 2, device="cuda"),
    "avg_pool2d_backward": lambda: nc.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x4, 2, device="cuda"),
}


@pytest.mark.parametrize("op", sorted(CALLS))
def test_device_cuda_without_gpu_says_what_to_do(op):
    from numbacnn.cuda import NO_GPU_MESSAGE, NoGPUError

    with pytest.raises(NoGPUError) as err:
        CALLS[op]()
    msg = str(err.value)
    assert msg.startswith(NO_GPU_MESSAGE)
    assert "none was found" in msg and "device='cpu'" in msg and "NUMBA_ENABLE_CUDASIM=1" in msg
    assert "--device cudasim" in msg


def test_require_gpu_and_the_package_import_without_gpu():
    import numbacnn.cuda as ncc

    assert issubclass(ncc.NoGPUError, RuntimeError)
    assert ncc.config.threads_per_block >= 1  # the launch configuration needs no GPU
    with pytest.raises(ncc.NoGPUError):
        ncc.require_gpu()
    assert not ncc.simulator_enabled()


def test_config_is_validated():
    from numbacnn.cuda import config

    with pytest.raises(ValueError, match="threads_per_block must be a power of two from 1 to 1024, got 48"):
        config.set_threads_per_block(48)
    with pytest.raises(ValueError, match="tile must be an int from 1 to 32"):
        with config.override(tile=0):
            pass
    before = (config.threads_per_block, config.tile, config.simple)
    with config.override(threads_per_block=4, tile=2, simple=True):
        assert (config.threads_per_block, config.tile, config.simple) == (4, 2, True)
        assert config.launch_1d(9) == (3, 4)
    assert (config.threads_per_block, config.tile, config.simple) == before


def test_to_host_passes_numpy_through():
    from numbacnn.cuda import to_host

    a = np.arange(3.0)
    assert to_host(a) is a
    assert float(to_host(np.float32(2.5))) == 2.5
