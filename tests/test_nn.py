"""numbacnn.nn: names, state dicts, initialisation, layer gradients, observers and devices."""
import math
import os

import numpy as np
import pytest

import numbacnn as nc
from numbacnn import nn
from numbacnn.models import lenet
from helpers import HAS_TORCH, assert_close

LENET_KEYS = ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias",
              "11.weight", "11.bias"]
LENET_SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]


@pytest.mark.parametrize("variant", ["d2l", "modern"])
def test_lenet_state_dict_uses_pytorch_sequential_names(variant):
    net = lenet(variant, seed=0)
    sd = net.state_dict()
    assert list(sd) == LENET_KEYS
    assert [v.shape for v in sd.values()] == LENET_SHAPES
    assert all(v.dtype == np.float32 for v in sd.values())
    assert all(isinstance(p, nc.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_parameters()] == LENET_KEYS
    act = nn.Sigmoid if variant == "d2l" else nn.ReLU
    pool = nn.AvgPool2d if variant == "d2l" else nn.MaxPool2d
    assert isinstance(net[1], act) and isinstance(net[2], pool) and isinstance(net[6], nn.Flatten)
    assert "Conv2d(1, 6" in repr(net)


def test_lenet_shapes_and_bad_arguments():
    net = lenet(seed=0)
    y = net.forward(np.zeros((3, 1, 28, 28), np.float32))
    assert y.shape == (3, 10)
    with pytest.raises(ValueError, match="variant"):
        lenet("alexnet")
    with pytest.raises(ValueError, match="init"):
        lenet(init="he")


def test_seed_makes_weights_reproducible():
    a, b, c = lenet(seed=1).state_dict(), lenet(seed=1).state_dict(), lenet(seed=2).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_load_state_dict_copies_and_checks():
    net = lenet(seed=0)
    sd = lenet(seed=5).state_dict()
    net.load_state_dict(sd)
    assert all(np.array_equal(net.state_dict()[k], sd[k]) for k in sd)
    net.parameters()[0].data += 1  # the model must not share the caller's arrays
    assert not np.array_equal(net.state_dict()["0.weight"], sd["0.weight"])
    with pytest.raises(ValueError, match=r"missing \['11.bias'\]"):
        net.load_state_dict({k: v for k, v in sd.items() if k != "11.bias"})
    with pytest.raises(ValueError, match="unexpected.*'12.weight'"):
        net.load_state_dict({**sd, "12.weight": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'0.weight'.*\(6, 1, 3, 3\)"):
        net.load_state_dict({**sd, "0.weight": np.zeros((6, 1, 3, 3))})


def test_default_init_bounds_match_pytorch():
    conv = nn.Conv2d(6, 16, 5, rng=0)
    bound = 1 / math.sqrt(6 * 25)  # kaiming_uniform(a=sqrt(5)) gives 1/sqrt(fan_in)
    for p in (conv.weight, conv.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound
    lin = nn.Linear(400, 120, rng=0)
    assert np.abs(lin.weight.data).max() <= 1 / math.sqrt(400)
    # U(-b, b) has standard deviation b / sqrt(3)
    assert abs(lin.weight.data.std() - 1 / math.sqrt(400) / math.sqrt(3)) < 0.05 / math.sqrt(400)


def test_xavier_uniform_bound():
    p = nc.Parameter(np.zeros((120, 400), np.float32))
    nn.init.xavier_uniform_(p, rng=0)
    a = math.sqrt(6 / (400 + 120))
    assert p.dtype == np.float32 and np.abs(p.data).max() <= a and np.abs(p.data).max() > 0.95 * a
    q = nc.Parameter(np.zeros((16, 6, 5, 5), np.float32))
    nn.init.xavier_uniform_(q, gain=2.0, rng=0)
    assert np.abs(q.data).max() <= 2 * math.sqrt(6 / (6 * 25 + 16 * 25))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nc.Parameter(np.zeros(3)))


def _fd_check(layer, x, eps=1e-6):
    """Finite-difference check of backward in float64: input gradient and every parameter gradient."""
    rng = np.random.default_rng(0)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    gx = layer.backward(g)

    def f():
        return float((layer.forward(x) * g).sum())

    for arr, grad in [(x, gx)] + [(p.data, p.grad) for p in layer.parameters()]:
        for idx in list(np.ndindex(arr.shape))[:: max(1, arr.size // 12)]:
            old = arr[idx]
            arr[idx] = old + eps
            up = f()
            arr[idx] = old - eps
            down = f()
            arr[idx] = old
            assert abs((up - down) / (2 * eps) - grad[idx]) < 1e-5 * (1 + abs(grad[idx])), (type(layer), idx)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=0), (2, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 4, 2, stride=2, groups=2, bias=False, dtype=np.float64, rng=0), (1, 2, 4, 6)),
    (lambda: nn.Linear(7, 4, dtype=np.float64, rng=0), (3, 7)),
    (lambda: nn.AvgPool2d(2), (2, 2, 4, 4)),
    (lambda: nn.MaxPool2d(2, stride=1), (1, 2, 4, 4)),
    (lambda: nn.MinPool2d(2), (1, 2, 4, 4)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 7)),
    (lambda: nn.Sigmoid(), (2, 3)),
    (lambda: nn.Tanh(), (2, 3)),
    (lambda: nn.ReLU(), (2, 3)),
    (lambda: nn.Flatten(), (2, 3, 2, 2)),
], ids=["conv", "conv-groups", "linear", "avgpool", "maxpool", "minpool", "adaptive", "sigmoid", "tanh", "relu",
        "flatten"])
def test_layer_backward_matches_finite_differences(make, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    _fd_check(make(), x)


@pytest.mark.parametrize("make, op, key", [
    (lambda: nn.MaxPool2d(2), "max_pool2d", "indices"),
    (lambda: nn.MinPool2d(3, stride=1, padding=1), "min_pool2d", "indices"),
    (lambda: nn.Sigmoid(), "sigmoid", "y"),
    (lambda: nn.Tanh(), "tanh", "y"),
], ids=["maxpool", "minpool", "sigmoid", "tanh"])
def test_layers_backward_from_what_the_forward_kept(monkeypatch, make, op, key):
    """Max/min pooling hand the forward's indices to the backward, sigmoid/tanh their output (PyTorch's way):
    same numbers as the backward from x."""
    from numbacnn import functional, pool

    mod = pool if op.endswith("pool2d") else functional
    seen = []
    real = getattr(mod, op + "_backward")
    spy = lambda *a, **kw: seen.append(kw) or real(*a, **kw)  # noqa: E731
    layer = make()
    if mod is pool:
        monkeypatch.setattr(mod, op + "_backward", spy)
    else:
        layer.op_backward = spy  # the class holds the function itself
    x = np.random.default_rng(2).integers(0, 4, (2, 3, 6, 6)).astype(np.float32)
    y = layer.forward(x)
    g = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    gx = layer.backward(g)
    assert seen and seen[-1].get(key) is not None
    opts = getattr(layer, "opts", {})
    expected = real(g, x, **opts)
    assert_close(gx, expected, atol=0 if key == "indices" else 1e-6, rtol=0 if key == "indices" else 1e-5)


def test_gradients_accumulate_until_zero_grad():
    lin = nn.Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    g = np.ones((4, 2), np.float32)
    lin.forward(x)
    lin.backward(g)
    first = lin.weight.grad.copy()
    lin.forward(x)
    lin.backward(g)
    assert_close(lin.weight.grad, 2 * first)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Linear(3, 2).backward(np.zeros((1, 2), np.float32))


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        nn.Sequential(nn.ReLU(), lambda x: x)


class Recorder:
    def __init__(self):
        self.events = []

    def on_forward(self, i, name, layer, x, y):
        self.events.append(("f", i, name, type(layer).__name__, x.shape, y.shape))

    def on_backward(self, i, name, layer, grad_y, grad_x):
        self.events.append(("b", i, name, type(layer).__name__, grad_y.shape, grad_x.shape))


def test_observers_see_every_layer_in_order():
    net = lenet(seed=0)
    rec = net.add_observer(Recorder())
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    y = net.forward(x)
    gx = net.backward(np.ones_like(y))
    fwd = [e for e in rec.events if e[0] == "f"]
    bwd = [e for e in rec.events if e[0] == "b"]
    assert [e[1] for e in fwd] == list(range(12)) and [e[1] for e in bwd] == list(range(11, -1, -1))
    assert fwd[0][2:] == ("0", "Conv2d", (2, 1, 28, 28), (2, 6, 28, 28))
    assert fwd[6][2:] == ("6", "Flatten", (2, 16, 5, 5), (2, 400))
    assert bwd[-1][2:] == ("0", "Conv2d", (2, 6, 28, 28), (2, 1, 28, 28)) and gx.shape == x.shape
    net.remove_observer(rec)
    net.forward(x)
    assert len(rec.events) == 24


def test_observed_and_plain_runs_give_the_same_numbers():
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    a, b = lenet("modern", seed=3), lenet("modern", seed=3)
    b.add_observer(Recorder())
    ya, yb = a.forward(x), b.forward(x)
    assert np.array_equal(ya, yb)
    assert np.array_equal(a.backward(np.ones_like(ya)), b.backward(np.ones_like(yb)))
    assert all(np.array_equal(p.grad, q.grad) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                  dict(kernel_size=2, stride=2, ceil_mode=True)], ids=["2x2", "overlapping", "ceil"])
def test_relu_then_max_pool_backward_in_one_step_has_the_same_bits(monkeypatch, pool):
    """Unobserved, Sequential runs a ReLU + MaxPool2d pair's backward as MaxPool2d.backward_after_relu (the
    ReLU's mask on the pooled output). Exact zeros, -0.0, negatives, NaN, windows sharing a winner and windows
    of padding give the bits of ReLU.backward(MaxPool2d.backward(g)), which an observed run takes."""
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, (3, 2, 7, 7)).astype(np.float32)  # many ties, zeros and negatives
    x[0, 0, 0, :3] = -0.0
    x[1, 1, 2, 2] = np.nan
    x[2, 0] = -1.0  # a plane whose every window pools a ReLU zero

    def make():
        return nn.Sequential(nn.Conv2d(2, 2, 1, rng=5), nn.ReLU(), nn.MaxPool2d(**pool), nn.Conv2d(2, 3, 1, rng=6))

    a, b = make(), make()
    b.add_observer(Recorder())
    ya, yb = a.forward(x), b.forward(x)
    g = rng.standard_normal(ya.shape).astype(np.float32)
    relu_calls = []
    real = nn.ReLU.backward
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, gy: relu_calls.append(1) or real(self, gy))
    ga = a.backward(g)
    assert relu_calls == []  # the pair's backward ran in one step
    gb = b.backward(g)
    assert relu_calls == [1]
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ga, gb)
    assert np.signbit(ga).tolist() == np.signbit(gb).tolist()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                  dict(kernel_size=2, divisor_override=3)], ids=["2x2", "overlapping", "divisor"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_then_avg_pool_backward_in_one_step_has_the_same_bits(monkeypatch, pool, dtype):
    """Unobserved, Sequential runs a Sigmoid + AvgPool2d pair's backward as AvgPool2d.backward_after_sigmoid (one
    pass over the sigmoid's output for 2x2 windows, the two ops otherwise). Odd planes (cells outside every
    window), saturated outputs, NaN and infinity give the bits of the observed run's two backward steps."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 2, 7, 9)) * 30).astype(dtype)  # 7x9: a last row and column in no 2x2 window
    x[1, 1, 2, 2], x[2, 0, 6, 8], x[0, 1, 3, 3] = np.nan, np.inf, -np.inf
    x[0, 0, 6, 1] = np.nan  # in no window: 0 * (1 - NaN) * NaN is NaN in both

    def make():
        return nn.Sequential(nn.Conv2d(2, 2, 1, rng=5), nn.Sigmoid(), nn.AvgPool2d(**pool), nn.Conv2d(2, 3, 1, rng=6))

    a, b = make(), make()
    if dtype == np.float64:
        a, b = a.to("cpu"), b.to("cpu")
        for m in (a, b):
            for p in m.parameters():
                p.data = p.data.astype(np.float64)
    b.add_observer(Recorder())
    ya, yb = a.forward(x), b.forward(x)
    g = rng.standard_normal(ya.shape).astype(dtype)
    calls = []
    real = nn.Sigmoid.backward
    monkeypatch.setattr(nn.Sigmoid, "backward", lambda self, gy: calls.append(1) or real(self, gy))
    ga = a.backward(g)
    assert calls == []
    gb = b.backward(g)
    assert calls == [1]
    np.testing.assert_array_equal(ga, gb)
    assert np.signbit(ga).tolist() == np.signbit(gb).tolist()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("act", [nn.ReLU, nn.Sigmoid])
def test_conv_then_activation_forward_in_one_step_has_the_same_bits(monkeypatch, act):
    """Unobserved, Sequential runs a Conv2d + ReLU or Sigmoid pair's forward as Conv2d.forward_activation (the
    activation inside conv's kernel 4 for a tile of examples) and the activation's backward from that output:
    the observed run's bits, forward and backward, for a batch of a tile of examples and more (17) and fewer (5)."""
    rng = np.random.default_rng(9)
    calls = []
    real = act.forward
    monkeypatch.setattr(act, "forward", lambda self, x: calls.append(1) or real(self, x))
    for n in (17, 5):
        x = (rng.standard_normal((n, 3, 9, 9)) * 3).astype(np.float32)

        def make():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=1), act(), nn.Conv2d(8, 4, 3, rng=2),
                                 nn.Flatten(), nn.Linear(4 * 7 * 7, 5, rng=3), act())

        a, b = make(), make()
        b.add_observer(Recorder())
        calls.clear()
        ya = a.forward(x)
        assert calls == [1]  # only the last activation (after a Linear) ran its own forward
        yb = b.forward(x)
        np.testing.assert_array_equal(ya.view(np.uint32), yb.view(np.uint32))
        g = rng.standard_normal(ya.shape).astype(np.float32)
        np.testing.assert_array_equal(a.backward(g).view(np.uint32), b.backward(g).view(np.uint32))
        for p, q in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p.grad.view(np.uint32), q.grad.view(np.uint32))
    monkeypatch.setenv("NUMBACNN_SPEEDUPS", "0")  # the plain path: every layer on its own
    calls.clear()
    a.forward(x)
    assert calls == [1, 1]


def test_cross_entropy_loss_module():
    crit = nn.CrossEntropyLoss()
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
    loss = crit(logits, np.array([0, 2]))
    assert_close(loss, nc.cross_entropy(logits, np.array([0, 2])))
    assert_close(crit.backward(), nc.cross_entropy_backward(1.0, logits, np.array([0, 2])))


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="the simulator stands in for a GPU")
def test_to_cuda_without_gpu_raises_no_gpu_error():
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a GPU is present")
    from numbacnn.cuda import NoGPUError

    with pytest.raises(NoGPUError, match="needs an NVIDIA GPU"):
        lenet().to("cuda")


@pytest.mark.parametrize("variant", ["d2l", "modern"])
def test_formula_kernels_reach_every_layer(monkeypatch, variant):
    """Layers pass no kernel=: the ops pick the fastest by default, and inside numbacnn.formula_kernels()
    every op of a whole network's forward and backward runs kernel 1, the formula."""
    import numbacnn.conv
    import numbacnn.functional
    import numbacnn.pool

    chosen = []
    for module in (numbacnn.conv, numbacnn.pool, numbacnn.functional):
        def spy(kernel, available, op, real=module.check_kernel):
            chosen.append((op, real(kernel, available, op)))
            return chosen[-1][1]

        monkeypatch.setattr(module, "check_kernel", spy)
    net, crit = lenet(variant, seed=0), nn.CrossEntropyLoss()
    x, y = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32), np.array([3, 1])

    def forward_backward():
        crit(net.forward(x), y)
        net.backward(crit.backward(), need_grad_x=False)

    forward_backward()
    assert chosen and all(k is None for _, k in chosen), chosen
    chosen.clear()
    with nc.formula_kernels():
        forward_backward()
    assert {"conv2d", "conv2d_backward", "linear", "linear_backward"} <= {op for op, _ in chosen}
    assert len(chosen) >= 2 * len(net) and all(k == 1 for _, k in chosen), chosen


def test_to_rejects_unknown_devices():
    with pytest.raises(ValueError, match="device"):
        lenet().to("tpu")


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("variant", ["d2l", "modern"])
def test_lenet_forward_backward_match_torch(variant):
    torch = pytest.importorskip("torch")
    from golden.gen_lenet import torch_lenet

    net = lenet(variant, seed=4)
    tnet = torch_lenet(variant)
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    x = np.random.default_rng(2).random((4, 1, 28, 28), dtype=np.float32)
    y = np.array([1, 7, 3, 3])
    crit = nn.CrossEntropyLoss()
    loss = crit(net.forward(x), y)
    net.backward(crit.backward())
    tx = torch.from_numpy(x).requires_grad_()
    tloss = torch.nn.functional.cross_entropy(tnet(tx), torch.from_numpy(y))
    tloss.backward()
    assert_close(loss, tloss.item(), rtol=1e-5)
    for (name, p), (tname, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert name == tname
        assert_close(p.grad, tp.grad.numpy(), atol=1e-6, rtol=1e-4, name=name)


SIM_SCRIPT = r"""
import numpy as np
from numbacnn import nn
from numbacnn.cuda import is_device
from numbacnn.optim import SGD
from numbacnn.train import evaluate, train_step

def make():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2), nn.Sigmoid(),
                         nn.Conv2d(2, 2, 1, rng=2), nn.AvgPool2d(1), nn.Flatten(), nn.Linear(18, 4, rng=1))

x = np.random.default_rng(0).random((3, 1, 6, 6), dtype=np.float32)
y = np.array([3, 1, 0])
cpu, gpu = make(), make().to("cudasim")
assert all(is_device(p.data) for p in gpu.parameters())
oc, og = SGD(cpu.parameters(), lr=0.1, momentum=0.9), SGD(gpu.parameters(), lr=0.1, momentum=0.9)
for step in range(2):
    lc, lg = train_step(cpu, oc, x, y), train_step(gpu, og, x, y)
    assert isinstance(lg, float) and abs(lc - lg) <= 1e-5 * abs(lc), (step, lc, lg)
assert evaluate(cpu, x, y) == evaluate(gpu, x, y)
sc, sg = cpu.state_dict(), gpu.state_dict()
assert list(sc) == list(sg)
for k in sc:
    assert type(sg[k]) is np.ndarray and np.allclose(sc[k], sg[k], rtol=1e-5, atol=1e-6), k
gpu.to("cpu")
assert all(type(p.data) is np.ndarray for p in gpu.parameters())
print("cudasim ok")
"""


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="runs its own simulator process")
def test_layers_train_on_the_cuda_simulator_like_on_the_cpu():
    """model.to("cudasim"): every layer runs the CUDA kernels (simulated); two SGD steps equal the CPU's."""
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", SIM_SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "cudasim ok" in proc.stdout, proc.stderr[-3000:]
