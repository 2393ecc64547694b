"""API fuzzing, arguments (tests/fuzz/test_fuzz_api_args.py): every public op, one argument at a time replaced by
hypothesis with a bad value (wrong types, strings, None, complex, object arrays, bools, NaN, negative, zero and
huge ints, wrong ndim: a TypeError or ValueError, one line, naming the argument: class "raw error") or with an
unusual valid one (float16, int, non-contiguous, Fortran-ordered, read-only arrays: the same result as the plain
float32 array: class "wrong result"). Empty batches through every op: class "crash".
"""
import math
import os

import numpy as np
import pytest
from api_cases import r
from fuzz_tally import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

import numbacnn as nc

Y3 = np.array([0, 1, 3])


def _examples(n):
    """n hypothesis examples in the normal run, the soak profile's number with NUMBACNN_FUZZ=soak."""
    return {} if os.environ.get("NUMBACNN_FUZZ") == "soak" else {"max_examples": n}


def _g(*shape):
    return r(*shape, seed=7)


CONV = dict(x=lambda: r(2, 2, 5, 5), weight=lambda: r(4, 1, 3, 3), bias=lambda: r(4))
CONV_OPTS = dict(stride=1, padding=1, dilation=1, groups=2)
POOL = dict(x=lambda: r(1, 2, 6, 6))
# op: (function, {argument: (kind, valid value maker)}); kinds say which bad values fit the argument
OPS = {
    "conv2d": (nc.conv2d, {**{k: ("array4", v) for k, v in CONV.items()}, "bias": ("array1", CONV["bias"]),
                           **{k: ("int", v) for k, v in CONV_OPTS.items()}, "flip": ("flag", False)}),
    "conv2d_backward": (nc.conv2d_backward, {"grad_out": ("array4", lambda: _g(2, 4, 5, 5)),
                                             **{k: ("array4", v) for k, v in CONV.items()},
                                             "bias": ("array1", CONV["bias"]),
                                             **{k: ("int", v) for k, v in CONV_OPTS.items()},
                                             "need_grad_x": ("flag", True)}),
    "corr2d": (nc.corr2d, {"X": ("array2", lambda: r(5, 5)), "K": ("array2", lambda: r(4, 4))}),
    "max_pool2d": (nc.max_pool2d, {"x": ("array4", POOL["x"]), "kernel_size": ("int", 2), "stride": ("int", 2),
                                   "padding": ("int", 1), "dilation": ("int", 1), "ceil_mode": ("flag", False),
                                   "return_indices": ("flag", False)}),
    "max_pool2d_backward": (nc.max_pool2d_backward, {"grad_out": ("array4", lambda: _g(1, 2, 4, 4)),
                                                     "x": ("array4", POOL["x"]), "kernel_size": ("int", 2),
                                                     "stride": ("int", 2), "padding": ("int", 1)}),
    "min_pool2d": (nc.min_pool2d, {"x": ("array4", POOL["x"]), "kernel_size": ("int", 3), "stride": ("int", 1)}),
    "avg_pool2d": (nc.avg_pool2d, {"x": ("array4", POOL["x"]), "kernel_size": ("int", 3), "stride": ("int", 2),
                                   "padding": ("int", 1), "ceil_mode": ("flag", False),
                                   "count_include_pad": ("flag", True), "divisor_override": ("divisor", 2)}),
    "avg_pool2d_backward": (nc.avg_pool2d_backward, {"grad_out": ("array4", lambda: _g(1, 2, 3, 3)),
                                                     "x": ("array4", POOL["x"]), "kernel_size": ("int", 3),
                                                     "stride": ("int", 2), "padding": ("int", 1)}),
    "adaptive_avg_pool2d": (nc.adaptive_avg_pool2d, {"x": ("array4", POOL["x"]), "output_size": ("int", (3, 2))}),
    "adaptive_avg_pool2d_backward": (nc.adaptive_avg_pool2d_backward, {"grad_out": ("array4", lambda: _g(1, 2, 3, 2)),
                                                                       "x": ("array4", POOL["x"]),
                                                                       "output_size": ("int", (3, 2))}),
    "adaptive_max_pool2d": (nc.adaptive_max_pool2d, {"x": ("array4", POOL["x"]), "output_size": ("int", 4),
                                                     "return_indices": ("flag", True)}),
    "adaptive_max_pool2d_backward": (nc.adaptive_max_pool2d_backward, {"grad_out": ("array4", lambda: _g(1, 2, 4, 4)),
                                                                       "x": ("array4", POOL["x"]),
                                                                       "output_size": ("int", 4)}),
    "linear": (nc.linear, {"x": ("array2", lambda: r(3, 4)), "weight": ("array2", lambda: r(5, 4)),
                           "bias": ("array1", lambda: r(5))}),
    "linear_backward": (nc.linear_backward, {"grad_out": ("array2", lambda: _g(3, 5)), "x": ("array2", lambda: r(3, 4)),
                                             "weight": ("array2", lambda: r(5, 4)), "bias": ("array1", lambda: r(5))}),
    "relu": (nc.relu, {"x": ("array", lambda: r(2, 3))}),
    "relu_backward": (nc.relu_backward, {"grad_out": ("array", lambda: _g(2, 3)), "x": ("array", lambda: r(2, 3))}),
    "sigmoid": (nc.sigmoid, {"x": ("array", lambda: r(2, 3))}),
    "sigmoid_backward": (nc.sigmoid_backward, {"grad_out": ("array", lambda: _g(2, 3)),
                                               "x": ("array", lambda: r(2, 3))}),
    "tanh": (nc.tanh, {"x": ("array", lambda: r(4))}),
    "tanh_backward": (nc.tanh_backward, {"grad_out": ("array", lambda: _g(4)), "y": ("array", lambda: r(4))}),
    "cross_entropy": (nc.cross_entropy, {"logits": ("array2", lambda: r(3, 4)), "target": ("labels", Y3)}),
    "cross_entropy_backward": (nc.cross_entropy_backward, {"grad_out": ("scalar", 1.0),
                                                           "logits": ("array2", lambda: r(3, 4)),
                                                           "target": ("labels", Y3)}),
}
COMMON = {"kernel": ("kernel", None), "device": ("device", None)}

BAD_ANY = [None, "abc", {"a": 1}, object(), 1j, [1j, 2j], np.array([None, 1.0]), np.ones(3, np.complex64),
           np.array(["a", "b"]), [[1.0], [1.0, 2.0]]]
BAD = {
    "array": BAD_ANY,
    "array1": BAD_ANY + [np.ones((2, 2), "f4"), np.ones((), "f4"), np.ones(7, "f4")],
    "array2": BAD_ANY + [np.ones(3, "f4"), np.ones((1, 1, 1), "f4"), np.ones((2, 7), "f4")],
    "array4": BAD_ANY + [np.ones((2, 2), "f4"), np.ones((1, 2, 1, 1, 1), "f4"), np.ones((1, 1, 1, 1), "f4")],
    "int": [-1, -(2**40), 2**40, 2**63, 2**70, True, 1.5, "2", math.nan, [1, 2, 3], (1, "a"), (1,), 1j],
    "flag": ["yes", 1, 0, None, math.nan, [True]],
    "divisor": [0, 1.5, "2", True, 2**70, -(2**70), math.nan],
    "kernel": [0, 99, -1, "1", 1.0, True, math.nan],
    "device": ["gpu", "CPU", 1, True, "cuda:0", ""],
    "labels": [np.array([0.0, 1.0, 2.0]), np.array([0, 1]), np.array([0, 1, 4]), np.array([0, -1, 2]),
               np.array(["a", "b", "c"]), None, np.array([[0, 1, 2]]), 1.5, np.array([0, 1, 2], np.complex64)],
    "scalar": ["x", None, [1.0, 2.0], np.ones(2), 1j, {"g": 1}, np.array(["1"]), True],
}
BAD["int"] = BAD["int"] + [0]  # 0 is bad for every int option here but padding (valid there: skipped)


def _arguments(op):
    fn, args = OPS[op]
    made = {k: (v() if callable(v) else v) for k, (_, v) in args.items()}
    return fn, made


def _call(fn, kwargs):
    if fn in (nc.tanh_backward,):
        return fn(kwargs.pop("grad_out"), **kwargs)
    return fn(**kwargs)


def _valid_here(name, value):
    """The few catalogue values that are valid for this argument: None for bias, kernel and device; 0 and True
    (== 1) for padding."""
    if value is None:
        return name in ("bias", "kernel", "device")
    return name == "padding" and isinstance(value, (int, bool)) and value in (0, 1)


def _plan():
    def names(op):
        return st.sampled_from(sorted({**OPS[op][1], **COMMON})).flatmap(
            lambda name: st.tuples(st.just(op), st.just(name),
                                   st.integers(0, len(BAD[{**OPS[op][1], **COMMON}[name][0]]) - 1)))
    return st.sampled_from(sorted(OPS)).flatmap(names)


@fuzz_settings(**_examples(150))
@given(plan=_plan())
def test_a_bad_argument_gets_a_one_line_error_naming_it(plan):
    op, name, index = plan
    value = BAD[{**OPS[op][1], **COMMON}[name][0]][index]
    if _valid_here(name, value):
        return
    tally("api", "raw error")
    fn, kwargs = _arguments(op)
    kwargs[name] = value
    kind = {**OPS[op][1], **COMMON}[name][0]
    shape_only = kind.startswith("array") and index >= len(BAD_ANY)  # a float array of another shape
    try:
        _call(fn, kwargs)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
    else:
        assert shape_only, f"{op}({name}={value!r}) was accepted"
        return  # that shape happens to fit the other arguments (adaptive pooling takes any plane)
    assert "\n" not in msg.strip(), f"{op}({name}={value!r}): the message is more than one line: {msg!r}"
    if shape_only:  # a shape that disagrees: either side may be named
        names = [k for k, (kd, _) in OPS[op][1].items() if kd.startswith("array")]
    else:
        names = [name, "x"] if name == "y" else [name]
    assert any(n in msg for n in names), f"{op}({name}={value!r}): the message names none of {names}: {msg!r}"


def _variants(a):
    """Unusual valid forms of a float32 array a: (label, array, the float array an op sees)."""
    out = [("float16", a.astype(np.float16), a.astype(np.float16).astype(np.float32)),
           ("int", np.round(a).astype(np.int32), np.round(a).astype(np.float32)),
           ("Fortran order", np.asfortranarray(a), a),
           ("read-only", _readonly(a.copy()), a)]
    if a.ndim:
        wide = np.repeat(a, 2, axis=-1)
        out.append(("non-contiguous", wide[..., ::2], a))
    return out


def _readonly(a):
    a.setflags(write=False)
    return a


def _same(got, want):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif want is None:
        assert got is None
    else:
        np.testing.assert_array_equal(got, want)
        assert np.asarray(got).dtype == np.asarray(want).dtype


ARRAY_ARGS = sorted((op, name) for op, (_, args) in OPS.items() for name, (kind, _) in args.items()
                    if kind.startswith("array"))


@fuzz_settings(**_examples(60))
@given(pick=st.sampled_from(ARRAY_ARGS), which=st.integers(0, 4))
def test_unusual_valid_arrays_give_the_plain_result(pick, which):
    op, name = pick
    fn, kwargs = _arguments(op)
    variants = _variants(kwargs[name])
    label, unusual, plain = variants[which % len(variants)]
    tally("api", "wrong result")
    with np.errstate(all="ignore"):
        want = _call(fn, {**kwargs, name: plain})
        got = _call(fn, {**kwargs, name: unusual})
    _same(got, want)
    if label == "read-only":
        assert not unusual.flags.writeable


EMPTY = [  # op calls on a batch of 0 examples (or 0 elements): empty results, no crash
    ("conv2d", lambda: nc.conv2d(r(0, 2, 5, 5), r(3, 2, 3, 3), r(3), padding=1), (0, 3, 5, 5)),
    ("conv2d_backward", lambda: nc.conv2d_backward(r(0, 3, 5, 5), r(0, 2, 5, 5), r(3, 2, 3, 3), r(3), padding=1)[1],
     (3, 2, 3, 3)),
    ("max_pool2d", lambda: nc.max_pool2d(r(0, 2, 4, 4), 2), (0, 2, 2, 2)),
    ("max_pool2d_backward", lambda: nc.max_pool2d_backward(r(0, 2, 2, 2), r(0, 2, 4, 4), 2), (0, 2, 4, 4)),
    ("avg_pool2d", lambda: nc.avg_pool2d(r(0, 2, 4, 4), 2), (0, 2, 2, 2)),
    ("adaptive_avg_pool2d", lambda: nc.adaptive_avg_pool2d(r(0, 2, 4, 4), 3), (0, 2, 3, 3)),
    ("adaptive_max_pool2d", lambda: nc.adaptive_max_pool2d(r(0, 2, 4, 4), 3), (0, 2, 3, 3)),
    ("no channels", lambda: nc.max_pool2d(r(2, 0, 4, 4), 2), (2, 0, 2, 2)),
    ("linear", lambda: nc.linear(r(0, 4), r(5, 4), r(5)), (0, 5)),
    ("linear_backward", lambda: nc.linear_backward(r(0, 5), r(0, 4), r(5, 4), r(5))[1], (5, 4)),
    ("relu", lambda: nc.relu(r(0, 3)), (0, 3)),
    ("sigmoid_backward", lambda: nc.sigmoid_backward(r(3, 0), r(3, 0)), (3, 0)),
    ("tanh 0-d", lambda: nc.tanh(np.float32(0.5)), ()),
    ("sgd empty", lambda: (lambda p: (nc.optim.sgd([p], [r(0)], [None], lr=0.1, momentum=0.9), p)[1])(r(0)), (0,)),
]


@pytest.mark.parametrize("case", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_batches_give_empty_results(case):
    tally("api", "crash")
    _, call, shape = case
    assert np.shape(call()) == shape


def test_empty_batch_gradients_are_zero():
    tally("api", "wrong result", 2)
    _, gw, gb = nc.conv2d_backward(r(0, 3, 5, 5), r(0, 2, 5, 5), r(3, 2, 3, 3), r(3), padding=1)
    assert not gw.any() and not gb.any()
    _, gw, gb = nc.linear_backward(r(0, 5), r(0, 4), r(5, 4), r(5))
    assert not gw.any() and not gb.any()


def test_empty_logits_are_refused():
    tally("api", "raw error")
    with pytest.raises(ValueError, match="logits must be non-empty"):
        nc.cross_entropy(r(0, 4), np.zeros(0, int))
