"""The fused SGD kernel under the simulator: PyTorch golden runs and the CPU kernel, element for element."""
import numpy as np
import pytest

from golden.format import load_cases
from helpers import assert_close
from numbacnn.optim import sgd as sgd_cpu

pytestmark = pytest.mark.cudasim

CASES = load_cases("sgd")
INPUTS = dict((c[0], c[2]) for c in CASES)["inputs"]
RUNS = {c[0]: c for c in CASES if c[0] != "inputs"}
PICKED = ["sgd01", "sgd13", "sgd19", "sgd23", "sgd29"]  # maximize, weight decay, dampening, Nesterov, momentum
STEPS = 10  # of the golden file's 100: the golden arrays are the end state, so compare with the CPU kernel too


def _cuda():
    import numbacnn.cuda as ncc

    return ncc


def sgd_gpu(*args, **kwargs):
    """numbacnn.optim.sgd on the device (numbacnn.cuda.optim runs it)."""
    return sgd_cpu(*args, **kwargs, device="cuda")


def _run(step, params, steps, opts):
    bufs = [None, None]
    for k in range(steps):
        step(params, [INPUTS["grads0"][k], INPUTS["grads1"][k]], bufs, **opts)
    return params, bufs


@pytest.mark.parametrize("name", PICKED)
def test_sgd_matches_cpu_kernel(small_blocks, name):
    ncc = _cuda()
    _, opts, _ = RUNS[name]
    p_cpu, b_cpu = _run(sgd_cpu, [INPUTS["init0"].copy(), INPUTS["init1"].copy()], STEPS, opts)
    p_gpu, b_gpu = _run(sgd_gpu, [ncc.to_device(INPUTS["init0"]), ncc.to_device(INPUTS["init1"])], STEPS, opts)
    for i in range(2):
        assert_close(ncc.to_host(p_gpu[i]), p_cpu[i], atol=0, rtol=0, name=f"{name} p{i}")
        if opts["momentum"]:
            assert ncc.is_device(b_gpu[i])
            assert_close(ncc.to_host(b_gpu[i]), b_cpu[i], atol=0, rtol=0, name=f"{name} buf{i}")
        else:
            assert b_gpu[i] is None


@pytest.mark.parametrize("name", ["sgd23"])
def test_sgd_matches_torch_golden(small_blocks, name):
    ncc = _cuda()
    _, opts, a = RUNS[name]
    params, bufs = _run(sgd_gpu, [ncc.to_device(INPUTS["init0"]), ncc.to_device(INPUTS["init1"])],
                        INPUTS["grads0"].shape[0], opts)
    for i in range(2):
        assert_close(ncc.to_host(params[i]), a[f"p{i}"], atol=1e-6, rtol=1e-6, name=f"{name} p{i}")
        assert_close(ncc.to_host(bufs[i]), a[f"buf{i}"], atol=1e-6, rtol=1e-6, name=f"{name} buf{i}")


def test_sgd_float64_and_device_grads(small_blocks):
    ncc = _cuda()
    p = np.linspace(-1, 1, 11)
    g = np.cos(p)
    p_cpu, b_cpu = [p.copy()], [None]
    p_gpu, b_gpu = [ncc.to_device(p)], [None]
    for _ in range(3):
        sgd_cpu(p_cpu, [g], b_cpu, lr=0.1, momentum=0.5, dampening=0.2)
        sgd_gpu(p_gpu, [ncc.to_device(g)], b_gpu, lr=0.1, momentum=0.5, dampening=0.2)
    assert_close(ncc.to_host(p_gpu[0]), p_cpu[0], atol=0, rtol=0)
    assert ncc.to_host(p_gpu[0]).dtype == np.float64


def test_sgd_errors(small_blocks):
    ncc = _cuda()
    p = ncc.to_device(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3, 2\) but params\[0\] has shape \(2, 3\)"):
        sgd_gpu([p], [np.zeros((3, 2), np.float32)], [None], lr=0.1)
    with pytest.raises(ValueError, match="must have the same length"):
        sgd_gpu([p], [], [None], lr=0.1)
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float64 on the device, expected float32"):
        sgd_gpu([p], [ncc.to_device(np.zeros((2, 3)))], [None], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\] must be a CUDA device array"):
        sgd_gpu([np.zeros(3)], [np.zeros(3)], [None], lr=0.1)


def test_public_sgd_and_the_sgd_class_run_on_the_device(small_blocks):
    import numbacnn as nc
    from numbacnn.optim import SGD, sgd

    ncc = _cuda()
    _, opts, _ = RUNS["sgd23"]
    p_cpu, b_cpu = _run(sgd_cpu, [INPUTS["init0"].copy(), INPUTS["init1"].copy()], 3, opts)
    params = [ncc.to_device(INPUTS["init0"]), ncc.to_device(INPUTS["init1"])]
    _run(sgd, params, 3, opts)  # device=None: numbacnn.optim.sgd follows the device arrays to numbacnn.cuda.optim
    for i in range(2):
        assert ncc.is_device(params[i])
        assert_close(ncc.to_host(params[i]), p_cpu[i], atol=0, rtol=0)
    ps = [nc.Parameter(ncc.to_device(INPUTS["init0"])), nc.Parameter(ncc.to_device(INPUTS["init1"]))]
    opt = SGD(ps, **opts)
    for k in range(3):
        ps[0].grad, ps[1].grad = ncc.to_device(INPUTS["grads0"][k]), ncc.to_device(INPUTS["grads1"][k])
        opt.step()
    for i in range(2):
        assert_close(ncc.to_host(ps[i].data), p_cpu[i], atol=0, rtol=0)
        assert_close(ncc.to_host(opt.state[ps[i]]["momentum_buffer"]), b_cpu[i], atol=0, rtol=0)


def test_every_gpu_kernel_matches_the_reference(small_blocks):
    """Each numbered kernel of numbacnn.cuda.optim against numbacnn.reference.optim.sgd (float64, three steps)."""
    from numbacnn.cuda.optim import KERNELS
    from numbacnn.reference.optim import sgd as reference_sgd

    ncc = _cuda()
    opts = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True, maximize=True)
    p0 = np.linspace(-1, 1, 7)
    for kernel in KERNELS["sgd"]:
        got, got_bufs, want, want_bufs = [ncc.to_device(p0)], [None], [p0.copy()], [None]
        for step in range(3):
            g = np.sin(p0 * (step + 1))
            sgd_gpu(got, [g], got_bufs, **opts, kernel=kernel)
            reference_sgd(want, [g], want_bufs, **opts)
        assert_close(ncc.to_host(got[0]), want[0], atol=1e-14, rtol=1e-13, name=f"kernel {kernel} p")
        assert_close(ncc.to_host(got_bufs[0]), want_bufs[0], atol=1e-14, rtol=1e-13, name=f"kernel {kernel} buf")
