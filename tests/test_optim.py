"""SGD: 100 steps of every hyperparameter combination match torch.optim.SGD; the class validates like PyTorch."""
import numpy as np
import pytest

import numbacnn as nc
from numbacnn.cpu import optim as cpu
from numbacnn.optim import SGD, sgd
from numbacnn.reference.optim import sgd as reference_sgd
from golden.format import load_cases
from helpers import HAS_TORCH, assert_close

CASES = load_cases("sgd")
INPUTS = dict((c[0], c[2]) for c in CASES)["inputs"]
RUNS = [c for c in CASES if c[0] != "inputs"]


def _run(step_fn, opts):
    params = [INPUTS["init0"].copy(), INPUTS["init1"].copy()]
    bufs = [None, None]
    for k in range(INPUTS["grads0"].shape[0]):
        step_fn(params, [INPUTS["grads0"][k], INPUTS["grads1"][k]], bufs, **opts)
    return params, bufs


@pytest.mark.parametrize("impl", [sgd, reference_sgd], ids=["numba", "reference"])
@pytest.mark.parametrize("name,opts,a", RUNS, ids=[c[0] for c in RUNS])
def test_sgd_matches_torch_golden(impl, name, opts, a):
    params, bufs = _run(impl, opts)
    for i in range(2):
        assert params[i].dtype == np.float32
        assert_close(params[i], a[f"p{i}"], atol=1e-6, rtol=1e-6, name=f"{name} p{i}")
        if opts["momentum"]:
            assert_close(bufs[i], a[f"buf{i}"], atol=1e-6, rtol=1e-6, name=f"{name} buf{i}")
        else:
            assert bufs[i] is None


@pytest.mark.parametrize("name,opts,a", RUNS, ids=[c[0] for c in RUNS])
def test_one_call_for_all_parameters_equals_one_call_each(name, opts, a):
    """sgd updates a list of parameters in one sgd_update_many_kernel1 call; the same steps one parameter at a
    time (lists of one: sgd_update_kernel1) give the same bits, momentum buffers included."""
    together = [INPUTS["init0"].copy(), INPUTS["init1"].copy()], [None, None]
    apart = [INPUTS["init0"].copy(), INPUTS["init1"].copy()], [None, None]
    for k in range(INPUTS["grads0"].shape[0]):
        grads = [INPUTS["grads0"][k], INPUTS["grads1"][k]]
        sgd(together[0], grads, together[1], **opts)
        for i in range(2):
            buf = [apart[1][i]]
            sgd([apart[0][i]], [grads[i]], buf, **opts)
            apart[1][i] = buf[0]
    for i in range(2):
        assert together[0][i].tobytes() == apart[0][i].tobytes(), f"{name} p{i}"
        assert (together[1][i] is None) == (apart[1][i] is None)
        if together[1][i] is not None:
            assert together[1][i].tobytes() == apart[1][i].tobytes(), f"{name} buf{i}"


def test_parameters_of_mixed_dtypes_or_history_are_updated_one_by_one():
    """Parameters of two dtypes, or some with a momentum buffer and some without, still get PyTorch's update."""
    p32, p64 = np.ones(3, np.float32), np.ones(2, np.float64)
    sgd([p32, p64], [np.full(3, 2.0, np.float32), np.full(2, 4.0)], [None, None], lr=0.5)
    assert p32.tolist() == [0.0] * 3 and p64.tolist() == [-1.0] * 2
    params, bufs = [np.ones(2, np.float32), np.ones(2, np.float32)], [np.full(2, 1.0, np.float32), None]
    sgd(params, [np.ones(2, np.float32)] * 2, bufs, lr=0.5, momentum=0.5)
    assert bufs[0].tolist() == [1.5, 1.5] and bufs[1].tolist() == [1.0, 1.0]  # 0.5 * 1 + 1; the first copies g
    assert params[0].tolist() == [0.25, 0.25] and params[1].tolist() == [0.5, 0.5]


def test_a_strided_parameter_among_several_is_updated_in_place():
    """A non-contiguous parameter (a strided view) cannot share the one-call tuple with contiguous ones: every
    parameter is then updated one by one, in place, as the reference does."""
    base = np.ones((4, 4), np.float32)
    params = [base[:, ::2], np.ones(3, np.float32)]
    want = [params[0].copy(), params[1].copy()]
    grads = [np.full((4, 2), 2.0, np.float32), np.full(3, 4.0, np.float32)]
    sgd(params, grads, [None, None], lr=0.5, momentum=0.9)
    reference_sgd(want, grads, [None, None], lr=0.5, momentum=0.9)
    assert params[0].tolist() == want[0].tolist() and params[1].tolist() == want[1].tolist()
    assert base[:, 1].tolist() == [1.0] * 4  # the columns between stay as they were
    assert params[0].base is base


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("count", [1, 2])
def test_a_parameter_that_no_flat_view_reaches_is_still_updated(momentum, count):
    """base[::2, :3] has no flat view (reshape(-1) copies it): the update used to go to that copy and the
    parameter stayed as it was. Now it and a strided momentum buffer get the reference's values, in place."""
    base, buf_base = np.ones((4, 6), np.float32), np.zeros((4, 6), np.float32)
    params = [base[::2, :3], np.ones(3, np.float32)][:count]
    grads = [np.full((2, 3), 2.0, np.float32), np.full(3, 4.0, np.float32)][:count]
    want, want_bufs = [p.copy() for p in params], [None] * count
    bufs = [None] * count
    for step in range(3):
        sgd(params, grads, bufs, lr=0.5, momentum=momentum)
        reference_sgd(want, grads, want_bufs, lr=0.5, momentum=momentum)
        if step == 0 and momentum:  # from now on a strided buffer of its own, holding the same values
            buf_base[1::2, 3:] = bufs[0]
            bufs[0] = buf_base[1::2, 3:]
    for got, expected in zip(params, want):
        assert got.tolist() == expected.tolist()
    assert params[0].base is base and base[1].tolist() == [1.0] * 6 and base[0, 3:].tolist() == [1.0] * 3
    if momentum:
        assert bufs[0].tolist() == want_bufs[0].tolist() and bufs[0].base is buf_base


def test_first_step_copies_the_gradient_without_dampening():
    p, g = np.zeros(3, np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    bufs = [None]
    sgd([p], [g], bufs, lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_array_equal(bufs[0], g)
    assert bufs[0] is not g
    sgd([p], [g], bufs, lr=0.1, momentum=0.9, dampening=0.5)
    assert_close(bufs[0], 0.9 * g + 0.5 * g, atol=1e-7)


@pytest.mark.parametrize("name,opts,a", RUNS[::4], ids=[c[0] for c in RUNS[::4]])
def test_sgd_class_matches_golden(name, opts, a):
    params = [nc.Parameter(INPUTS["init0"]), nc.Parameter(INPUTS["init1"])]
    opt = SGD(params, **opts)
    for k in range(INPUTS["grads0"].shape[0]):
        opt.zero_grad()
        params[0].grad, params[1].grad = INPUTS["grads0"][k], INPUTS["grads1"][k]
        opt.step()
    for i, p in enumerate(params):
        assert_close(p.data, a[f"p{i}"], atol=1e-6, rtol=1e-6)
        if opts["momentum"]:
            assert_close(opt.state[p]["momentum_buffer"], a[f"buf{i}"], atol=1e-6, rtol=1e-6)


def test_step_skips_parameters_without_gradient():
    a, b = nc.Parameter(np.ones(2)), nc.Parameter(np.ones(2))
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(a.data, [0.5, 0.5])
    np.testing.assert_array_equal(b.data, [1, 1])
    assert "momentum_buffer" not in opt.state[b]


@pytest.mark.skipif(not HAS_TORCH, reason="live parity needs torch")
@pytest.mark.parametrize("nesterov,dampening,maximize", [(False, 0.1, False), (True, 0.0, True)])
def test_live_parity_sgd_class(nesterov, dampening, maximize):
    import torch

    rng = np.random.default_rng(5)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    tp = torch.tensor(init, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.03, momentum=0.8, dampening=dampening, weight_decay=1e-3,
                           nesterov=nesterov, maximize=maximize)
    p = nc.Parameter(init)
    opt = SGD([p], lr=0.03, momentum=0.8, dampening=dampening, weight_decay=1e-3, nesterov=nesterov,
              maximize=maximize)
    for _ in range(100):
        g = rng.standard_normal(init.shape).astype(np.float32)
        tp.grad = torch.tensor(g)
        topt.step()
        p.grad = g
        opt.step()
    assert_close(p.data, tp.detach().numpy(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
])
def test_sgd_validates_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD([nc.Parameter(np.zeros(2))], **kwargs)
    if HAS_TORCH:
        import torch

        with pytest.raises(ValueError, match=message):
            torch.optim.SGD([torch.zeros(2, requires_grad=True)], **kwargs)


def test_sgd_bad_input():
    with pytest.raises(ValueError, match="same length"):
        sgd([np.zeros(2)], [], [None], lr=0.1)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3,\) but params\[0\] has shape \(2,\)"):
        sgd([np.zeros(2)], [np.zeros(3)], [None], lr=0.1)
    with pytest.raises(TypeError, match="numbacnn.Parameter"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


@pytest.mark.parametrize("kernel", cpu.KERNELS["sgd"])
@pytest.mark.parametrize("name", ["sgd00", "sgd13", "sgd23", "sgd29"])
def test_every_kernel_matches_the_reference(name, kernel):
    """Each numbered CPU kernel against numbacnn.reference.optim.sgd, ten steps, float32 (as PyTorch computes)."""
    opts = dict((c[0], c[1]) for c in RUNS)[name]
    got = [INPUTS["init0"].copy(), INPUTS["init1"].copy()], [None, None]
    want = [INPUTS["init0"].copy(), INPUTS["init1"].copy()], [None, None]
    for k in range(10):
        grads = [INPUTS["grads0"][k], INPUTS["grads1"][k]]
        sgd(got[0], grads, got[1], **opts, kernel=kernel)
        reference_sgd(want[0], grads, want[1], **opts)
    for i in range(2):
        assert_close(got[0][i], want[0][i], atol=1e-6, rtol=1e-6, name=f"{name} p{i}")
        if opts["momentum"]:
            assert_close(got[1][i], want[1][i], atol=1e-6, rtol=1e-6, name=f"{name} buf{i}")


def test_sgd_kernel_and_device_are_checked():
    p = [np.zeros(2, np.float32)]
    with pytest.raises(ValueError, match="kernel must be None .* or one of 1 for sgd, got 2"):
        sgd(p, [np.ones(2)], [None], lr=0.1, kernel=2)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cudasim', got 'gpu'"):
        sgd(p, [np.ones(2)], [None], lr=0.1, device="gpu")
    with pytest.raises(TypeError, match=r"params\[0\] must be a floating NumPy array, got list"):
        sgd([[0.0, 1.0]], [np.ones(2)], [None], lr=0.1)
    sgd(p, [np.ones(2)], [None], lr=0.5, device="cpu")
    np.testing.assert_array_equal(p[0], [-0.5, -0.5])
