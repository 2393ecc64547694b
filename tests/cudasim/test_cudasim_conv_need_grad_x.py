"""conv2d_backward(need_grad_x=False) on the CUDA target (simulator): grad_x None, the same other gradients."""
import numpy as np
import pytest

import numbacnn as nc

pytestmark = pytest.mark.cudasim


def test_conv2d_backward_can_skip_grad_x_on_cuda():
    import numbacnn.cuda as ncc

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 5), dtype=np.float32), rng.standard_normal((2, 2, 3, 3), dtype=np.float32)
    b = rng.standard_normal(2, dtype=np.float32)
    gy = rng.standard_normal((1, 2, 3, 3), dtype=np.float32)
    gx, gw, gb = nc.conv2d_backward(gy, x, w, b, device="cuda")
    none, gw2, gb2 = nc.conv2d_backward(gy, x, w, b, need_grad_x=False, device="cuda")
    assert none is None and gx.shape == x.shape
    assert np.array_equal(ncc.to_host(gw), ncc.to_host(gw2)) and np.array_equal(ncc.to_host(gb), ncc.to_host(gb2))
    with pytest.raises(TypeError, match="need_grad_x"):
        nc.conv2d_backward(gy, x, w, b, need_grad_x=1, device="cuda")
