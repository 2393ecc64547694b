"""linear, activations and cross-entropy: golden files, finite differences, live PyTorch parity, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numbacnn as nc
from numbacnn import reference as ref
from golden.format import load_cases
from helpers import HAS_TORCH, assert_close

CASES = load_cases("functional")
TOL = dict(atol=2e-5, rtol=2e-5)


def _by(op):
    return [c for c in CASES if c[1]["op"] == op]


@pytest.mark.parametrize("impl", ["numba", "reference"])
@pytest.mark.parametrize("name,opts,a", _by("linear"), ids=[c[0] for c in _by("linear")])
def test_linear_golden(impl, name, opts, a):
    fwd, bwd = (nc.linear, nc.linear_backward) if impl == "numba" else (ref.linear, ref.linear_backward)
    b = a.get("bias")
    assert_close(fwd(a["x"], a["weight"], b), a["y"], name=f"{name} y", atol=1e-4, rtol=1e-4)
    gx, gw, gb = bwd(a["grad_out"], a["x"], a["weight"], b)
    assert_close(gx, a["grad_x"], name=f"{name} grad_x", atol=1e-4, rtol=1e-4)
    assert_close(gw, a["grad_weight"], name=f"{name} grad_weight", atol=1e-4, rtol=1e-4)
    if b is None:
        assert gb is None
    else:
        assert_close(gb, a["grad_bias"], name=f"{name} grad_bias", **TOL)


ACTS = [c for c in CASES if c[1]["op"] in ("relu", "sigmoid", "tanh")]


@pytest.mark.parametrize("impl", ["numba", "reference"])
@pytest.mark.parametrize("name,opts,a", ACTS, ids=[c[0] for c in ACTS])
def test_activation_golden(impl, name, opts, a):
    mod = nc if impl == "numba" else ref
    fwd, bwd = getattr(mod, name), getattr(mod, f"{name}_backward")
    assert_close(fwd(a["x"]), a["y"], name=f"{name} y", **TOL)
    assert_close(bwd(a["grad_out"], a["x"]), a["grad_x"], name=f"{name} grad_x", **TOL)


@pytest.mark.parametrize("impl", ["numba", "reference"])
@pytest.mark.parametrize("name,opts,a", _by("cross_entropy"), ids=[c[0] for c in _by("cross_entropy")])
def test_cross_entropy_golden(impl, name, opts, a):
    mod = nc if impl == "numba" else ref
    assert_close(mod.cross_entropy(a["logits"], a["target"]), a["y"], name=f"{name} loss", **TOL)
    g = mod.cross_entropy_backward(a["grad_out"], a["logits"], a["target"])
    assert_close(g, a["grad_logits"], name=f"{name} grad_logits", **TOL)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    assert nc.cross_entropy(logits, [0]) == 0.0
    assert np.isclose(nc.cross_entropy(logits, [1]), 1e4)
    assert np.isfinite(nc.cross_entropy_backward(1.0, logits, [2])).all()


def _numeric_grad(f, arr, eps=1e-6):
    num = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        num[idx] = (up - down) / (2 * eps)
    return num


def test_finite_differences_linear():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    gy = rng.standard_normal((3, 2))
    f = lambda: float((nc.linear(x, w, b) * gy).sum())  # noqa: E731
    gx, gw, gb = nc.linear_backward(gy, x, w, b)
    for arr, grad in ((x, gx), (w, gw), (b, gb)):
        assert_close(grad, _numeric_grad(f, arr), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_finite_differences_activations(op):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    gy = rng.standard_normal(x.shape)
    f = lambda: float((getattr(nc, op)(x) * gy).sum())  # noqa: E731
    assert_close(getattr(nc, f"{op}_backward")(gy, x), _numeric_grad(f, x), atol=1e-7, rtol=1e-6)


def test_finite_differences_cross_entropy():
    rng = np.random.default_rng(2)
    logits, t = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    f = lambda: float(nc.cross_entropy(logits, t))  # noqa: E731
    assert_close(nc.cross_entropy_backward(1.0, logits, t), _numeric_grad(f, logits), atol=1e-7, rtol=1e-6)


@pytest.mark.skipif(not HAS_TORCH, reason="live parity needs torch")
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 6), I=st.integers(1, 20), O=st.integers(1, 12), bias=st.booleans(),
       seed=st.integers(0, 2**31))
def test_live_parity_linear_and_activations(N, I, O, bias, seed):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, I)).astype(np.float32)
    w = rng.standard_normal((O, I)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else None
    t = rng.integers(0, O, N)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    tz = F.linear(tx, tw, tb)
    tz.retain_grad()
    acts = [torch.sigmoid(tz), torch.tanh(tz), F.relu(tz)]
    loss = F.cross_entropy(sum(acts) + tz, torch.tensor(t))
    loss.backward()
    z = nc.linear(x, w, b)
    assert_close(z, tz.detach().numpy(), atol=1e-4, rtol=1e-4, name="linear")
    s = nc.sigmoid(z) + nc.tanh(z) + nc.relu(z) + z
    assert_close(nc.cross_entropy(s, t), loss.item(), atol=1e-5, rtol=1e-5, name="loss")
    gs = nc.cross_entropy_backward(1.0, s, t)
    gz = gs + nc.sigmoid_backward(gs, z) + nc.tanh_backward(gs, z) + nc.relu_backward(gs, z)
    assert_close(gz, tz.grad.numpy(), atol=1e-5, rtol=1e-4, name="grad z")
    gx, gw, gb = nc.linear_backward(gz, x, w, b)
    assert_close(gx, tx.grad.numpy(), atol=1e-4, rtol=1e-4, name="grad_x")
    assert_close(gw, tw.grad.numpy(), atol=1e-4, rtol=1e-4, name="grad_w")


# ---------------------------------------------------------------- bad input

def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got 3"):
        nc.linear(np.zeros((1, 2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x has 3 features but weight expects 4"):
        nc.linear(np.zeros((2, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\), got \(4,\)"):
        nc.linear(np.zeros((2, 4)), np.zeros((5, 4)), np.zeros(4))
    with pytest.raises(TypeError, match="x must hold real numbers, got dtype complex128"):
        nc.linear(np.zeros((2, 4), complex), np.zeros((5, 4)))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        nc.relu(np.array(["a", "b"]))


def test_cross_entropy_bad_input():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"target has label 4 out of range \[0, 4\)"):
        nc.cross_entropy(logits, [0, 1, 4])
    with pytest.raises(ValueError, match=r"target has label -1"):
        nc.cross_entropy(logits, [0, -1, 2])
    with pytest.raises(ValueError, match=r"target must have shape \(3,\) to match logits \(3, 4\), got \(2,\)"):
        nc.cross_entropy(logits, [0, 1])
    with pytest.raises(TypeError, match="target must hold integer class labels, got dtype float64"):
        nc.cross_entropy(logits, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="logits must have 2 dimensions"):
        nc.cross_entropy(np.zeros(4), [0])
    with pytest.raises(ValueError, match="grad_out must have x's shape"):
        nc.relu_backward(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- backward from the forward's output (y=)

@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_from_output_matches_x_path_and_torch(op, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5, 5)) * 4).astype(dtype)
    x.flat[:4] = [0.0, 30.0, -30.0, 9.0]  # saturated ends: y near 1 and near 0
    gy = rng.standard_normal(x.shape).astype(dtype)
    fwd, bwd = getattr(nc, op), getattr(nc, f"{op}_backward")
    y = fwd(x)
    gx = bwd(gy, x, y=y)
    assert gx.dtype == dtype and gx.shape == x.shape
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-14, rtol=1e-12)
    assert_close(gx, bwd(gy, x), name=f"{op} y= vs x", **tol)
    assert_close(bwd(gy, None, y=y), gx, name=f"{op} x=None", atol=0, rtol=0)
    assert_close(getattr(ref, f"{op}_backward")(gy, x, y=y), gx, name=f"{op} reference y=", **tol)
    if HAS_TORCH:
        import torch

        tx = torch.tensor(x, requires_grad=True)
        getattr(torch, op)(tx).backward(torch.tensor(gy))
        assert_close(gx, tx.grad.numpy(), name=f"{op} y= vs torch", **tol)


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_backward_from_output_bad_input(op):
    bwd = getattr(nc, f"{op}_backward")
    x, g = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"y must have x's shape \(2, 3\), got \(3, 2\)"):
        bwd(g, x, y=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"grad_out must have y's shape \(2, 3\), got \(6,\)"):
        bwd(np.zeros(6), None, y=x)
    with pytest.raises(TypeError, match=f"{op}_backward needs x or y"):
        bwd(g, None)
    with pytest.raises(TypeError, match="y must hold real numbers, got dtype complex128"):
        bwd(g, x, y=x.astype(complex))


# ---------------------------------------------------------------- device= and kernel=

def test_device_keyword_and_the_deprecated_target_alias():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.warns(DeprecationWarning, match="target= is deprecated"):
        y = nc.linear(x, w, target="cpu")
    np.testing.assert_array_equal(y, nc.linear(x, w, device="cpu"))
    for op in (nc.relu, nc.sigmoid, nc.tanh):
        with pytest.warns(DeprecationWarning) as warned:
            op(x, target="cpu")
        assert warned[0].filename == __file__  # the caller's line, where the old name is written
        with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cudasim', got 'tpu'"):
            op(x, device="tpu")
    with pytest.raises(ValueError, match="device='cpu' and target='cuda' disagree"), pytest.warns(DeprecationWarning):
        nc.relu_backward(x, x, device="cpu", target="cuda")


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_the_common_activation_call_keeps_every_rule_of_the_checked_way(monkeypatch, op):
    """relu(x), sigmoid(x), tanh(x) of a NumPy array the kernels take as it is, with no options, go straight to the
    CPU launcher (numbacnn.functional's short way); formula_kernels() still means kernel 1 there, and the size
    limit still refuses."""
    import numbacnn.cpu.functional as cpu

    kernels = []
    launcher = getattr(cpu, op)

    def spy(x, kernel=None):
        kernels.append(kernel)
        return launcher(x, kernel=kernel)

    monkeypatch.setattr(cpu, op, spy)
    x = np.random.default_rng(3).standard_normal((4, cpu.ONE_THREAD_BELOW // 4)).astype(np.float32)
    want = getattr(ref, op)(x.astype(np.float64))
    assert_close(getattr(nc, op)(x), want, name=op, atol=1e-6, rtol=1e-6)
    with nc.formula_kernels():
        assert_close(getattr(nc, op)(x), want, name=f"{op} formula", atol=1e-6, rtol=1e-6)
    assert kernels == [None, 1]
    with nc.set_limits(max_array_bytes=x.nbytes - 1), pytest.raises(ValueError, match=f"{op}'s output"):
        getattr(nc, op)(x)
    assert len(kernels) == 2


def test_cross_entropy_target_is_the_labels_and_device_selects_the_device():
    logits = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
    assert nc.cross_entropy(logits, target=[1, 2]) == nc.cross_entropy(logits, [1, 2], device="cpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cudasim', got 'gpu'"):
        nc.cross_entropy(logits, [1, 2], device="gpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cudasim', got 'gpu'"):
        nc.cross_entropy_backward(1.0, logits, [1, 2], device="gpu")
    with pytest.raises(TypeError, match="multiple values for argument 'target'"):
        nc.cross_entropy(logits, [1, 2], target="cpu")


def test_the_formula_kernels_on_demand():
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((5, 9)), rng.standard_normal((4, 9)), rng.standard_normal(4)
    assert_close(nc.linear(x, w, b, kernel=1), nc.linear(x, w, b), atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match=r"kernel must be None \(the fastest that fits\) or one of 1, 2, 3 for linear"):
        nc.linear(x, w, b, kernel=4)
    with pytest.raises(ValueError, match="or one of 1, 2 for relu, got True"):
        nc.relu(x, kernel=True)
