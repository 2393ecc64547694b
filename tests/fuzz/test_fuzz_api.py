"""API fuzzing, the explicit tables (tests/fuzz/test_fuzz_api.py): every API case of issue #14 and its neighbours.

Memory safety ("crash"): every array sgd writes is checked before any kernel runs, so each case raises in-process
and leaves every array untouched (a regression that reached a kernel would fail the "untouched" check or, at
worst, kill the run, which fails CI too). Wrong results ("wrong result") and raw errors ("raw error") likewise.
The hypothesis strategies are in test_fuzz_api_values.py (valid inputs) and test_fuzz_api_args.py (bad ones).
"""
import math

import numpy as np
import pytest
from api_cases import expect_error, r
from fuzz_tally import tally

import numbacnn as nc
from numbacnn import nn, optim

Y = np.array([0, 2])


def _readonly(a):
    a.setflags(write=False)
    return a


def _sgd_case(params, grads, bufs, **opts):
    """A call of optim.sgd, and a check that it changed nothing (params and buffers as before)."""
    before = [np.array(p, copy=True) for p in params], [None if b is None else np.array(b, copy=True) for b in bufs]

    def call():
        try:
            optim.sgd(params, grads, bufs, **{"lr": 0.1, **opts})
        finally:
            for p, p0 in zip(params, before[0]):
                np.testing.assert_array_equal(p, p0, err_msg="a refused sgd call changed a parameter")
            for b, b0 in zip(bufs, before[1]):
                if b0 is not None:
                    np.testing.assert_array_equal(b, b0, err_msg="a refused sgd call changed a buffer")
    return call


CRASH = [  # (id, call, error type, words the message must hold)
    ("buffer too small", _sgd_case([r(1000, 1000)], [r(1000, 1000)], [np.zeros(1, "f4")], momentum=0.9),
     ValueError, ["momentum_buffers[0]", "(1,)", "(1000, 1000)"]),
    ("buffer too big", _sgd_case([r(3)], [r(3)], [np.zeros(30, "f4")], momentum=0.9), ValueError, ["(30,)"]),
    ("buffer transposed", _sgd_case([r(2, 3)], [r(2, 3)], [np.zeros((3, 2), "f4")], momentum=0.9), ValueError,
     ["momentum_buffers[0]", "(3, 2)"]),
    ("second buffer wrong", _sgd_case([r(3), r(4)], [r(3), r(4)], [None, np.zeros(1, "f4")], momentum=0.9),
     ValueError, ["momentum_buffers[1]"]),
    ("read-only param", _sgd_case([_readonly(r(3))], [r(3)], [None]), ValueError, ["params[0]", "read-only"]),
    ("read-only buffer", _sgd_case([r(3)], [r(3)], [_readonly(np.zeros(3, "f4"))], momentum=0.9), ValueError,
     ["momentum_buffers[0]", "read-only"]),
    ("int64 buffer", _sgd_case([r(3)], [r(3)], [np.zeros(3, "i8")], momentum=0.9), TypeError,
     ["momentum_buffers[0]", "int64"]),
    ("float64 buffer, float32 param", _sgd_case([r(3)], [r(3)], [np.zeros(3)], momentum=0.9), TypeError,
     ["momentum_buffers[0]", "float64"]),
    ("buffer is the param", (lambda p: _sgd_case([p], [r(3)], [p], momentum=0.9))(r(3)), ValueError,
     ["momentum_buffers[0]", "shares memory"]),
    ("list buffer", _sgd_case([r(3)], [r(3)], [[0.0, 0.0, 0.0]], momentum=0.9), TypeError, ["momentum_buffers[0]"]),
    ("int param", _sgd_case([np.zeros(3, "i8")], [r(3)], [None]), TypeError, ["params[0]", "int64"]),
    ("float16 param", _sgd_case([np.zeros(3, "f2")], [r(3)], [None]), TypeError, ["params[0]", "float16"]),
    ("grad wrong shape", _sgd_case([r(3)], [r(4)], [None]), ValueError, ["grads[0]", "(4,)"]),
    ("grad too big", _sgd_case([r(3)], [r(3000)], [None], momentum=0.5), ValueError, ["grads[0]", "(3000,)"]),
    ("second param bad, first untouched", _sgd_case([r(3), _readonly(r(2))], [r(3), r(2)], [None, None]),
     ValueError, ["params[1]"]),
    ("complex grad", _sgd_case([r(3)], [r(3) + 1j], [None]), TypeError, ["grads[0]", "complex"]),
    ("string grad", _sgd_case([r(3)], ["abc"], [None]), TypeError, ["grads[0]"]),
    ("object grad", _sgd_case([r(3)], [np.array([None, 1, 2])], [None]), TypeError, ["grads[0]", "object"]),
    ("tuple of buffers", lambda: optim.sgd([r(3)], [r(3)], (None,), lr=0.1), TypeError, ["momentum_buffers"]),
    ("lengths differ", lambda: optim.sgd([r(3)], [r(3), r(3)], [None], lr=0.1), ValueError, ["same length"]),
]


@pytest.mark.parametrize("case", CRASH, ids=[c[0] for c in CRASH])
def test_sgd_refuses_every_array_it_would_write_wrongly(case):
    _, call, exc, needles = case
    tally("api", "crash")
    expect_error(call, exc, *needles)


def _sgd_with_state(*bufs, momentum=0.9):
    opt = optim.SGD([nc.Parameter(r(2, 3)), nc.Parameter(r(4))], lr=0.1, momentum=momentum)
    return lambda: opt.load_state_dict({"momentum_buffers": list(bufs)})


LOAD_STATE = [
    ("wrong shape", _sgd_with_state(np.zeros(1, "f4"), None), ValueError, ["momentum_buffers'][0]", "(1,)"]),
    ("int buffer", _sgd_with_state(np.zeros((2, 3), "i8"), None), TypeError, ["momentum_buffers'][0]", "int64"]),
    ("complex buffer", _sgd_with_state(None, np.zeros(4, "c8")), TypeError, ["momentum_buffers'][1]", "complex"]),
    ("string buffer", _sgd_with_state(None, "abcd"), TypeError, ["momentum_buffers'][1]"]),
    ("too few", _sgd_with_state(None), ValueError, ["1 momentum buffers for 2"]),
    ("not a list", lambda: optim.SGD([nc.Parameter(r(2))]).load_state_dict({"momentum_buffers": 3}), TypeError,
     ["momentum_buffers"]),
    ("empty dict", lambda: optim.SGD([nc.Parameter(r(2))]).load_state_dict({}), ValueError, ["'momentum_buffers'"]),
    ("not a dict", lambda: optim.SGD([nc.Parameter(r(2))]).load_state_dict([1]), TypeError, ["state", "list"]),
    ("nan lr in defaults", lambda: optim.SGD([nc.Parameter(r(2))]).load_state_dict(
        {"momentum_buffers": [None], "defaults": {"lr": math.nan}}), ValueError, ["lr", "nan"]),
    ("unknown default", lambda: optim.SGD([nc.Parameter(r(2))]).load_state_dict(
        {"momentum_buffers": [None], "defaults": {"betas": 1}}), ValueError, ["betas"]),
]


@pytest.mark.parametrize("case", LOAD_STATE, ids=[c[0] for c in LOAD_STATE])
def test_sgd_load_state_dict_checks_before_it_changes_anything(case):
    _, call, exc, needles = case
    tally("api", "crash" if "buffer" in case[0] or "shape" in case[0] else "raw error")
    expect_error(call, exc, *needles)


def test_sgd_load_state_dict_then_step_matches_a_fresh_run():
    """A loaded float64 buffer is copied in the parameter's dtype, and stepping on goes exactly as without the
    round trip; the caller's array is never written."""
    tally("api", "wrong result")
    p1, p2 = nc.Parameter(r(2, 3)), nc.Parameter(r(2, 3))
    a, b = optim.SGD([p1], lr=0.1, momentum=0.9), optim.SGD([p2], lr=0.1, momentum=0.9)
    for opt, p in ((a, p1), (b, p2)):
        p.grad = r(2, 3, seed=1)
        opt.step()
    mine = np.array(a.state_dict()["momentum_buffers"][0], dtype=np.float64)
    b.load_state_dict({"momentum_buffers": [mine]})
    for opt, p in ((a, p1), (b, p2)):
        p.grad = r(2, 3, seed=2)
        opt.step()
    np.testing.assert_array_equal(p1.data, p2.data)
    assert mine.dtype == np.float64 and b.state[p2]["momentum_buffer"].dtype == np.float32


WRONG = [  # (id, call, check of the result)
    ("relu nan", lambda: nc.relu(np.array([np.nan], "f4")), lambda y: np.isnan(y).all()),
    ("relu nan kernel 1", lambda: nc.relu(np.array([np.nan, -1.0, 2.0], "f4"), kernel=1),
     lambda y: np.isnan(y[0]) and list(y[1:]) == [0.0, 2.0]),
    ("relu -0.0 stays -0.0 (PyTorch)", lambda: nc.relu(np.array([-0.0], "f4")), lambda y: np.signbit(y[0])),
    ("relu_backward at nan x passes grad", lambda: nc.relu_backward(np.ones(1, "f4"), np.array([np.nan], "f4")),
     lambda g: g[0] == 1.0),
    ("relu_backward at 0 gives 0", lambda: nc.relu_backward(np.full(1, np.nan, "f4"), np.zeros(1, "f4")),
     lambda g: g[0] == 0.0),
    ("sigmoid(0.5) is 0-d", lambda: nc.sigmoid(0.5), lambda y: np.shape(y) == () and abs(y - 0.62245935) < 1e-6),
    ("relu(-2) is 0-d", lambda: nc.relu(-2.0), lambda y: np.shape(y) == () and y == 0),
    ("tanh(np.float64) is 0-d float64", lambda: nc.tanh(np.float64(0.3)),
     lambda y: np.shape(y) == () and y.dtype == np.float64),
    ("relu_backward of scalars is 0-d", lambda: nc.relu_backward(2.0, 1.0), lambda g: np.shape(g) == () and g == 2),
    ("sigmoid_backward(y=) of scalars is 0-d", lambda: nc.sigmoid_backward(1.0, y=0.5),
     lambda g: np.shape(g) == () and g == 0.25),
    ("tanh_backward of scalars is 0-d", lambda: nc.tanh_backward(1.0, 0.0), lambda g: np.shape(g) == () and g == 1),
    ("sigmoid(nan)", lambda: nc.sigmoid(np.array([np.nan, np.inf, -np.inf], "f4")),
     lambda y: np.isnan(y[0]) and y[1] == 1 and y[2] == 0),
    ("cross_entropy nan logit", lambda: nc.cross_entropy(np.array([[0.0, np.nan]], "f4"), [0]), np.isnan),
    ("cross_entropy_backward inf grad: NaN at the label (PyTorch)",
     lambda: nc.cross_entropy_backward(math.inf, np.zeros((1, 2), "f4"), [0]),
     lambda g: np.isnan(g[0, 0]) and g[0, 1] == math.inf),
    ("max_pool2d nan wins", lambda: nc.max_pool2d(np.array([[[[1.0, np.nan], [3.0, 2.0]]]], "f4"), 2),
     lambda y: np.isnan(y).all()),
]


@pytest.mark.parametrize("case", WRONG, ids=[c[0] for c in WRONG])
def test_results_match_pytorch_on_the_issue_cases(case):
    _, call, check = case
    tally("api", "wrong result")
    assert check(call())


def test_sgd_with_nan_gradient_matches_pytorch():
    """A NaN gradient element makes that element NaN (and its momentum), nothing else."""
    tally("api", "wrong result")
    p, g, bufs = np.ones(3, "f4"), np.array([0.5, np.nan, 0.5], "f4"), [None]
    optim.sgd([p], [g], bufs, lr=0.1, momentum=0.9)
    assert np.isnan(p[1]) and np.isnan(bufs[0][1]) and np.isfinite(p[[0, 2]]).all()


def _ce_case(grad):
    return lambda: nc.cross_entropy_backward(grad, r(2, 3), Y)


RAW = [  # (id, call, error type, words the message must hold)
    ("conv2d padding=30000", lambda: nc.conv2d(r(1, 1, 4, 4), r(1, 1, 3, 3), padding=30000), ValueError,
     ["padding=30000", "GiB", "set_limits"]),
    ("adaptive_avg_pool2d 60000", lambda: nc.adaptive_avg_pool2d(r(1, 1, 4, 4), 60000), ValueError,
     ["output_size=60000", "GiB"]),
    ("adaptive_max_pool2d 60000", lambda: nc.adaptive_max_pool2d(r(1, 1, 4, 4), (60000, 60000)), ValueError,
     ["output_size=(60000, 60000)"]),
    ("relu of a broadcast view", lambda: nc.relu(np.broadcast_to(np.float32(1), (60000, 60000))), ValueError,
     ["x", "(60000, 60000)", "GiB"]),
    ("nn.Linear(40000, 40000)", lambda: nn.Linear(40000, 40000), ValueError, ["in_features=40000", "GiB"]),
    ("nn.Conv2d huge", lambda: nn.Conv2d(50000, 50000, 3), ValueError, ["out_channels=50000", "GiB"]),
    ("linear with a huge output", lambda: nc.linear(np.broadcast_to(r(1, 1), (70000, 1)),
                                                    np.broadcast_to(r(1, 1), (70000, 1))), ValueError,
     ["linear's output", "(70000, 70000)"]),
    ("padding=2**62", lambda: nc.conv2d(r(1, 1, 4, 4), r(1, 1, 3, 3), padding=2**62), ValueError,
     ["padding", str(2**62)]),
    ("stride=2**63", lambda: nc.conv2d(r(1, 1, 4, 4), r(1, 1, 3, 3), stride=2**63), ValueError,
     ["stride", str(2**63)]),
    ("pool stride=2**63", lambda: nc.max_pool2d(r(1, 1, 4, 4), 2, stride=2**63), ValueError, ["stride"]),
    ("avg divisor_override=2**70", lambda: nc.avg_pool2d(r(1, 1, 4, 4), 2, divisor_override=2**70), ValueError,
     ["divisor_override"]),
    ("cross_entropy device='gpu'", lambda: nc.cross_entropy(r(2, 3), Y, device="gpu"), ValueError,
     ["device", "'gpu'"]),
    ("cross_entropy_backward array grad", _ce_case(np.ones(2)), ValueError, ["grad_out", "(2,)"]),
    ("cross_entropy_backward string grad", _ce_case("x"), TypeError, ["grad_out", "'x'"]),
    ("cross_entropy_backward None grad", _ce_case(None), TypeError, ["grad_out", "None"]),
    ("cross_entropy_backward complex grad", _ce_case(1j), TypeError, ["grad_out", "1j"]),
    ("SGD(lr='0.1')", lambda: optim.SGD([nc.Parameter(r(2))], lr="0.1"), TypeError, ["lr", "'0.1'"]),
    ("SGD(momentum=None)", lambda: optim.SGD([nc.Parameter(r(2))], momentum=None), TypeError, ["momentum", "None"]),
    ("SGD(None)", lambda: optim.SGD(None), TypeError, ["params", "NoneType"]),
    ("SGD(a Parameter)", lambda: optim.SGD(nc.Parameter(r(2))), TypeError, ["params", "Parameter"]),
    ("SGD twice the same", lambda: optim.SGD([nc.Parameter(r(2))] * 2), ValueError, ["more than once"]),
    ("sgd(params=None)", lambda: optim.sgd(None, [], [], lr=0.1), TypeError, ["params", "NoneType"]),
    ("sgd lr=nan", lambda: optim.sgd([r(2)], [r(2)], [None], lr=math.nan), ValueError, ["lr", "nan"]),
    ("sgd nesterov='yes'", lambda: optim.sgd([r(2)], [r(2)], [None], lr=0.1, nesterov="yes"), TypeError,
     ["nesterov", "'yes'"]),
    ("Flatten of a list", lambda: nn.Flatten().forward([[1.0, 2.0]]), TypeError, ["x", "list"]),
    ("Flatten start_dim out of range", lambda: nn.Flatten(3).forward(r(2, 3)), ValueError, ["start_dim=3"]),
    ("Flatten start_dim='1'", lambda: nn.Flatten("1"), TypeError, ["start_dim", "'1'"]),
    ("lenet(seed=-1)", lambda: nc.models.lenet(seed=-1), ValueError, ["seed", "-1"]),
    ("lenet(seed='a')", lambda: nc.models.lenet(seed="a"), TypeError, ["seed", "'a'"]),
    ("nn.Linear dtype int", lambda: nn.Linear(2, 3, dtype=np.int32), TypeError, ["dtype"]),
    ("set_limits(max_array_bytes=0)", lambda: nc.set_limits(max_array_bytes=0), ValueError, ["max_array_bytes", "0"]),
    ("relu of a ragged list", lambda: nc.relu([[1.0], [1.0, 2.0]]), TypeError, ["x", "list"]),
    ("relu of None", lambda: nc.relu(None), TypeError, ["x", "None"]),
    ("relu of complex", lambda: nc.relu(np.ones(2, "c8")), TypeError, ["x", "complex64"]),
]
X4 = np.ones((1, 1, 4, 4), "f4")
RAW += [  # the layers
    ("Conv2d(in_channels=1.5)", lambda: nn.Conv2d(1.5, 2, 3), ValueError, ["in_channels", "1.5"]),
    ("Conv2d(kernel_size=0)", lambda: nn.Conv2d(1, 2, 0), ValueError, ["kernel_size", "0"]),
    ("Conv2d(stride='a') forward", lambda: nn.Conv2d(1, 2, 3, stride="a")(X4), ValueError, ["stride", "'a'"]),
    ("Linear(rng=-3)", lambda: nn.Linear(2, 2, rng=-3), ValueError, ["rng", "-3"]),
    ("AvgPool2d('a') forward", lambda: nn.AvgPool2d("a")(X4), ValueError, ["kernel_size", "'a'"]),
    ("AdaptiveAvgPool2d(None) forward", lambda: nn.AdaptiveAvgPool2d(None)(X4), ValueError, ["output_size", "None"]),
    ("CrossEntropyLoss target None", lambda: nn.CrossEntropyLoss()(r(2, 3), None), TypeError, ["target", "None"]),
    ("CrossEntropyLoss target 'ab'", lambda: nn.CrossEntropyLoss()(r(2, 3), "ab"), TypeError, ["target", "str"]),
    ("Sequential(1)", lambda: nn.Sequential(1), TypeError, ["layers[0]", "int"]),
    ("Linear.to('gpu')", lambda: nn.Linear(2, 2).to("gpu"), ValueError, ["device", "'gpu'"]),
    ("Parameter('abc')", lambda: nc.Parameter("abc"), TypeError, ["data", "<U3"]),
    ("Linear forward, wrong features", lambda: nn.Linear(3, 2)(r(2, 4)), ValueError, ["x", "4 features"]),
]
for _lr in ("nan", "inf", "-inf"):
    for _arg in ("lr", "momentum", "dampening", "weight_decay"):
        RAW.append((f"SGD({_arg}={_lr})", lambda a=_arg, v=_lr: optim.SGD([nc.Parameter(r(2))], **{a: float(v)}),
                    ValueError, [_arg, _lr]))


@pytest.mark.parametrize("case", RAW, ids=[c[0] for c in RAW])
def test_bad_arguments_get_one_line_errors_naming_them(case):
    _, call, exc, needles = case
    tally("api", "raw error")
    expect_error(call, exc, *needles)


def test_flatten_backward_of_the_wrong_size_and_cross_entropy_loss_backward():
    tally("api", "raw error", 3)
    f = nn.Flatten()
    f.forward(r(2, 3, 4))
    expect_error(lambda: f.backward(r(2, 5)), ValueError, "grad_y", "(2, 12)", "(2, 5)")
    expect_error(lambda: f.backward([1.0]), TypeError, "grad_y", "list")
    crit = nn.CrossEntropyLoss()
    crit(r(2, 3), Y)
    expect_error(lambda: crit.backward("x"), TypeError, "grad_out", "'x'")


def test_the_size_limit_is_configurable_in_one_place(monkeypatch):
    """set_limits as a call and as a with block, the environment variable, and the default, in that order."""
    tally("api", "raw error", 4)
    assert nc.get_limits() == {"max_array_bytes": 4 * 2**30}
    with nc.set_limits(max_array_bytes=1000):
        expect_error(lambda: nc.relu(np.zeros(251, "f4")), ValueError, "relu's output", "1000 bytes")
        nc.relu(np.zeros(250, "f4"))
    assert nc.get_limits()["max_array_bytes"] == 4 * 2**30
    monkeypatch.setenv("NUMBACNN_MAX_ARRAY_BYTES", "64")
    expect_error(lambda: nc.sigmoid(np.zeros(17, "f4")), ValueError, "NUMBACNN_MAX_ARRAY_BYTES")
    with nc.set_limits(max_array_bytes=2**20):
        nc.sigmoid(np.zeros(17, "f4"))
    monkeypatch.setenv("NUMBACNN_MAX_ARRAY_BYTES", "lots")
    expect_error(nc.get_limits, ValueError, "NUMBACNN_MAX_ARRAY_BYTES", "'lots'")


def test_module_load_state_dict_checks_every_entry_before_changing_any():
    tally("api", "wrong result", 2)
    net = nn.Linear(3, 2, rng=0)
    before = net.weight.data.copy()
    good = net.state_dict()
    expect_error(lambda: net.load_state_dict({**good, "bias": np.zeros(2, "c8")}), TypeError, "bias", "complex64")
    expect_error(lambda: net.load_state_dict({"weight": good["weight"] * 2, "bias": np.zeros(5)}), ValueError,
                 "bias", "(5,)")
    np.testing.assert_array_equal(net.weight.data, before)
    tally("api", "raw error", 3)
    expect_error(lambda: net.load_state_dict(None), TypeError, "state", "NoneType")
    expect_error(lambda: nn.init.uniform_(net.weight, a="x"), TypeError, "a", "'x'")
    expect_error(lambda: nn.init.xavier_uniform_(net.weight, gain=math.nan), ValueError, "gain", "nan")


@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay"])
def test_sgd_refuses_hyperparameters_that_overflow_the_params_dtype(name):
    """1e300 is a finite float64 but inf in float32, where the kernel computes: refused before any write."""
    p = r(4)
    before = p.copy()
    expect_error(lambda: optim.sgd([p], [r(4)], [None], **{"lr": 0.1, name: 1e300}), ValueError, name, "1e+300",
                 "float32")
    assert np.array_equal(p, before)
    tally("api", "wrong result")
    q = np.ones(3)  # float64 holds it
    optim.sgd([q], [np.ones(3)], [None], lr=1e300)
    assert np.isfinite(q).all()
