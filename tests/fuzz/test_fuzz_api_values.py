"""API fuzzing, valid inputs (tests/fuzz/test_fuzz_api_values.py): hypothesis arrays with NaN, inf, -0.0, empty
dimensions and 0-d shapes through every public op, compared with numbacnn.reference (finite inputs) or PyTorch
(non-finite ones: the oracle for where NaN and inf land), NaN and inf placement included. Class "wrong result".

Not drawn here: NaN or inf in a conv2d weight or grad_out together with padding. numbacnn's rule is that the
padding contributes nothing, not even 0 * NaN (kernel 1, the CUDA kernels, and the CPU's default, which takes
kernel 1 for non-finite data); PyTorch's CPU has no one rule there (a 1x1 kernel multiplies the zero padding by a
NaN weight, a 3x3 one skips it; its backward multiplies the padding by a NaN grad_out, and with a stride gives
NaN grad_x even to inputs no window reads). Nor an infinite grad_out into sigmoid_backward from x: PyTorch
computes its backward from y = sigmoid(x) rounded to the dtype (1 - y is 0 from x = 17 on in float32: inf * 0 is
NaN); from x, numbacnn keeps the tiny exact 1 - s (inf * 1e-9 is inf). Given y=, both agree (tested).
"""
import math

import numpy as np
import pytest
from api_cases import same_values
from fuzz_tally import fuzz_settings, tally
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numbacnn as nc
from numbacnn import reference as ref
from numbacnn import optim

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's oracle warns on inf - inf: expected
TF = torch.nn.functional

SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0]
DTYPES = st.sampled_from([np.float32, np.float64])


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def values(dtype, shape, special=True, bound=8.0):
    """Arrays of ``shape`` with finite values in [-bound, bound] and, when ``special``, some NaN/inf/-0.0."""
    finite = st.floats(-bound, bound, width=32 if dtype == np.float32 else 64)
    elements = st.one_of(finite, finite, finite, st.sampled_from(SPECIAL)) if special else finite
    return hnp.arrays(dtype, shape, elements=elements)


def _t(a):
    return torch.from_numpy(np.array(a, copy=True))  # a contiguous copy that keeps 0-d arrays 0-d


def _finite(*arrays):
    return all(np.isfinite(a).all() for a in arrays if a is not None)


# ----------------------------------------------------------------------------------------------
# activations


@fuzz_settings()
@given(data=st.data(), op=st.sampled_from(["relu", "sigmoid", "tanh"]), dtype=DTYPES,
       shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), kernel=st.sampled_from([None, 1]))
def test_activations_and_their_backwards(data, op, dtype, shape, kernel):
    tally("api", "wrong result")
    x = data.draw(values(dtype, shape, bound=30.0), "x")
    g = data.draw(values(dtype, shape), "grad_out")
    y = getattr(nc, op)(x, kernel=kernel)
    xt = _t(x).requires_grad_()
    yt = getattr(torch, op)(xt)
    yt.backward(_t(g))
    same_values(y, yt.detach().numpy(), **_tol(dtype), what=f"{op} forward")
    assert np.asarray(y).dtype == dtype
    if op != "sigmoid" or np.isfinite(g).all():  # see the module's docstring
        same_values(getattr(nc, op + "_backward")(g, x, kernel=kernel), xt.grad.numpy(), **_tol(dtype),
                    what=f"{op} backward")
    if op != "relu":  # from the forward's output, as PyTorch's backward
        same_values(getattr(nc, op + "_backward")(g, y=y, kernel=kernel), xt.grad.numpy(), **_tol(dtype),
                    what=f"{op} backward from y")
    if _finite(x, g):
        same_values(y, getattr(ref, op)(x), **_tol(dtype), what=f"{op} vs reference")


# ----------------------------------------------------------------------------------------------
# linear and cross-entropy


@fuzz_settings()
@given(data=st.data(), dtype=DTYPES, n=st.integers(0, 3), i=st.integers(1, 4), o=st.integers(1, 4),
       has_bias=st.booleans(), kernel=st.sampled_from([None, 1]), special=st.booleans())
def test_linear_and_backward(data, dtype, n, i, o, has_bias, kernel, special):
    tally("api", "wrong result")
    x = data.draw(values(dtype, (n, i), special), "x")
    w = data.draw(values(dtype, (o, i), special), "weight")
    b = data.draw(values(dtype, (o,), special), "bias") if has_bias else None
    g = data.draw(values(dtype, (n, o), special), "grad_out")
    got = nc.linear(x, w, b, kernel=kernel), *nc.linear_backward(g, x, w, b, kernel=kernel)
    want = ref.linear(x, w, b), *ref.linear_backward(g, x, w, b)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else _tol(dtype)
    for name, a, e in zip(("y", "grad_x", "grad_weight", "grad_bias"), got, want):
        if e is not None:
            same_values(a, e, **tol, what=f"linear {name}")


@fuzz_settings()
@given(data=st.data(), dtype=DTYPES, n=st.integers(1, 4), k=st.integers(1, 5), kernel=st.sampled_from([None, 1]),
       grad=st.one_of(st.floats(-4, 4), st.sampled_from([math.nan, math.inf, -math.inf])))
def test_cross_entropy_and_backward(data, dtype, n, k, kernel, grad):
    tally("api", "wrong result")
    logits = data.draw(values(dtype, (n, k), bound=50.0), "logits")
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n), "target"))
    lt = _t(logits).requires_grad_()
    loss_t = TF.cross_entropy(lt, _t(labels))
    loss_t.backward(torch.tensor(grad, dtype=lt.dtype))
    loss = nc.cross_entropy(logits, labels, kernel=kernel)
    same_values(loss, loss_t.detach().numpy(), **_tol(dtype), what="cross_entropy")
    same_values(nc.cross_entropy_backward(grad, logits, labels), lt.grad.numpy(), **_tol(dtype),
                what="cross_entropy_backward")
    if _finite(logits) and math.isfinite(grad):
        same_values(loss, ref.cross_entropy(logits, labels), **_tol(dtype), what="cross_entropy vs reference")


# ----------------------------------------------------------------------------------------------
# conv2d and pooling


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, dilation * (kh - 1) + 1 - 2 * pad), 6))
    w = draw(st.integers(max(1, dilation * (kw - 1) + 1 - 2 * pad), 6))
    return draw(st.integers(0, 2)), groups * cg, h, w, groups * og, (kh, kw), stride, pad, dilation, groups


@fuzz_settings()
@given(data=st.data(), case=conv_case(), dtype=DTYPES, kernel=st.sampled_from([None, 1]), special=st.booleans())
def test_conv2d_and_backward(data, case, dtype, kernel, special):
    tally("api", "wrong result")
    n, c, h, w_, o, (kh, kw), stride, pad, dil, groups = case
    x = data.draw(values(dtype, (n, c, h, w_), special), "x")
    wt = data.draw(values(dtype, (o, c // groups, kh, kw), special and pad == 0 and stride == 1), "weight")
    b = data.draw(values(dtype, (o,), special), "bias")
    opts = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    y = nc.conv2d(x, wt, b, **opts, kernel=kernel)
    g = data.draw(values(dtype, y.shape, special and pad == 0), "grad_out")
    gx, gw, gb = nc.conv2d_backward(g, x, wt, b, **opts, kernel=kernel)
    xt, wtt, bt = (_t(a).requires_grad_() for a in (x, wt, b))
    yt = TF.conv2d(xt, wtt, bt, **opts)
    yt.backward(_t(g))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else _tol(dtype)
    for name, a, e in (("y", y, yt.detach().numpy()), ("grad_x", gx, xt.grad.numpy()),
                       ("grad_weight", gw, wtt.grad.numpy()), ("grad_bias", gb, bt.grad.numpy())):
        same_values(a, e, **tol, what=f"conv2d {name} {opts}")


@st.composite
def pool_case(draw):
    k = draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, k // 2))
    ceil_mode = draw(st.booleans())
    h, w = draw(st.integers(max(1, k - 2 * pad), 6)), draw(st.integers(max(1, k - 2 * pad), 6))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), k, stride, pad, ceil_mode


@fuzz_settings()
@given(data=st.data(), case=pool_case(), dtype=DTYPES, op=st.sampled_from(["max", "min", "avg"]),
       kernel=st.sampled_from([None, 1]))
def test_pools_and_backward(data, case, dtype, op, kernel):
    tally("api", "wrong result")
    shape, k, stride, pad, ceil_mode = case
    x = data.draw(values(dtype, shape), "x")
    opts = dict(kernel_size=k, stride=stride, padding=pad, ceil_mode=ceil_mode)
    y = getattr(nc, f"{op}_pool2d")(x, **opts, kernel=kernel)
    g = data.draw(values(dtype, y.shape), "grad_out")
    gx = getattr(nc, f"{op}_pool2d_backward")(g, x, **opts, kernel=kernel)
    xt = _t(x).requires_grad_()
    if op == "min":
        yt = -TF.max_pool2d(-xt, **opts)
    else:
        yt = getattr(TF, f"{op}_pool2d")(xt, **opts)
    yt.backward(_t(g))
    same_values(y, yt.detach().numpy(), **_tol(dtype), what=f"{op}_pool2d {opts}")
    same_values(gx, xt.grad.numpy(), **_tol(dtype), what=f"{op}_pool2d_backward {opts}")


@fuzz_settings()
@given(data=st.data(), dtype=DTYPES, op=st.sampled_from(["avg", "max"]), kernel=st.sampled_from([None, 1]),
       shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 6)),
       out=st.tuples(st.integers(1, 7), st.integers(1, 7)))
def test_adaptive_pools_and_backward(data, dtype, op, kernel, shape, out):
    tally("api", "wrong result")
    x = data.draw(values(dtype, shape), "x")
    y = getattr(nc, f"adaptive_{op}_pool2d")(x, out, kernel=kernel)
    g = data.draw(values(dtype, y.shape), "grad_out")
    gx = getattr(nc, f"adaptive_{op}_pool2d_backward")(g, x, out, kernel=kernel)
    xt = _t(x).requires_grad_()
    yt = getattr(TF, f"adaptive_{op}_pool2d")(xt, out)
    yt.backward(_t(g))
    same_values(y, yt.detach().numpy(), **_tol(dtype), what=f"adaptive_{op}_pool2d {out}")
    same_values(gx, xt.grad.numpy(), **_tol(dtype), what=f"adaptive_{op}_pool2d_backward {out}")


# ----------------------------------------------------------------------------------------------
# SGD


@fuzz_settings()
@given(data=st.data(), dtype=DTYPES, shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4),
       lr=st.floats(0, 2), momentum=st.sampled_from([0.0, 0.5, 0.9]), dampening=st.sampled_from([0.0, 0.3]),
       weight_decay=st.sampled_from([0.0, 0.01]), nesterov=st.booleans(), maximize=st.booleans())
def test_sgd_steps(data, dtype, shape, lr, momentum, dampening, weight_decay, nesterov, maximize):
    assume(not nesterov or (momentum > 0 and dampening == 0))
    tally("api", "wrong result")
    opts = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                maximize=maximize)
    p = data.draw(values(dtype, shape), "param")
    mine, theirs = [p.copy()], [p.copy()]
    bufs_mine, bufs_theirs = [None], [None]
    for step in range(3):
        g = data.draw(values(dtype, shape), f"grad {step}")
        optim.sgd(mine, [g], bufs_mine, **opts)
        ref.optim.sgd(theirs, [g], bufs_theirs, **{k: dtype(v) if isinstance(v, float) else v
                                                  for k, v in opts.items()})
        same_values(mine[0], theirs[0], **_tol(dtype), what=f"sgd step {step} {opts}")
        if momentum:
            same_values(bufs_mine[0], bufs_theirs[0], **_tol(dtype), what=f"sgd buffer {step}")
