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

    import numbacnn as nc

    loss = nc.cross_entropy(np.zeros((2, 4), np.float32), [1, 3], device="cuda")
    assert loss.shape == ()
    assert float(ncc.to_host(loss)) == pytest.approx(np.log(4))


def test_device_array_and_device_scalar():
    from numbacnn.cuda.arrays import device_array, device_scalar, to_device

    d = to_device(np.zeros((2, 3), np.float32))
    assert device_array(d, "x", 2) is d
    with pytest.raises(ValueError, match=r"x must have 1 dimensions, got 2 \(shape \(2, 3\)\)"):
        device_array(d, "x", 1)
    with pytest.raises(TypeError, match="x must hold float32 or float64 on the device, got dtype int64"):
        device_array(to_device(np.zeros(2, np.int64)), "x")
    one = device_scalar(2.5, "grad_out", np.float32)
    assert one.shape == (1,) and one.dtype == np.float32 and one.copy_to_host()[0] == 2.5
    assert device_scalar(to_device(np.ones((1, 1))), "grad_out", np.float32).shape == (1,)
    with pytest.raises(ValueError, match=r"grad_out must be a scalar, got shape \(2, 3\)"):
        device_scalar(d, "grad_out", np.float32)


def test_zero_dim_inputs_give_zero_dim_outputs_on_the_device():
    """A Python or NumPy scalar stays 0-d on its way to the device (PyTorch: sigmoid(tensor(0.5)).shape == ())."""
    import numbacnn as nc
    from numbacnn.cuda import to_device, to_host

    assert to_device(np.float32(2.0)).shape == ()
    for fn in (nc.sigmoid, nc.relu, nc.tanh):
        y = to_host(fn(0.5, device="cudasim"))
        assert y.shape == () and y.dtype == fn(0.5).dtype and np.isclose(y, fn(0.5), rtol=1e-6)
    assert to_host(nc.relu_backward(1.0, 0.5, device="cudasim")).shape == ()
