"""Host/device helpers and the simulator standing in for a GPU."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim


def test_the_simulator_counts_as_a_gpu():
    import numbacnn.cuda as ncc

    ncc.require_gpu()  # no error
    assert ncc.simulator_enabled() == (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1")


def test_to_device_and_to_host_round_trip():
    import numbacnn.cuda as ncc

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = ncc.to_device(a)
    assert ncc.is_device(d) and not ncc.is_device(a)
    assert ncc.to_device(d) is d
    back = ncc.to_host(d)
    assert isinstance(back, np.ndarray) and back is not a
    np.testing.assert_array_equal(back, a)
    assert ncc.to_device([1, 2], dtype=np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="device array has dtype float32, expected float64"):
        ncc.to_device(d, dtype=np.float64)


def test_loss_is_a_0d_device_array_read_with_float_to_host():
    import numbacnn.cuda as ncc

    loss = ncc.cross_entropy(np.zeros((2, 4), np.float32), [1, 3])
    assert loss.shape == ()
    assert float(ncc.to_host(loss)) == pytest.approx(np.log(4))
