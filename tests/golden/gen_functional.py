"""Write tests/golden/functional.npz and sgd.npz with PyTorch (CPU): linear, activations, cross-entropy, SGD.

Run: python tests/golden/gen_functional.py   (needs torch; the tests read the files without it)
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from format import GOLDEN_DIR, save_cases  # noqa: E402


def grads(fn, arrays, rng):
    """Run fn on tensors made from arrays, backprop a random grad_out; return out, grad_out, grads."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    gy = torch.tensor(rng.standard_normal(tuple(y.shape)).astype(arrays[0].dtype)) if y.dim() else torch.tensor(
        np.asarray(rng.standard_normal(), dtype=arrays[0].dtype))
    y.backward(gy)
    return y.detach().numpy(), gy.numpy(), [t.grad.numpy() for t in ts]


def functional_cases(rng):
    cases = []
    for k, (N, I, O, bias) in enumerate([(4, 7, 3, True), (5, 400, 120, True), (3, 6, 2, False), (1, 1, 1, True)]):
        arrays = [rng.standard_normal((N, I)).astype(np.float32), rng.standard_normal((O, I)).astype(np.float32)]
        if bias:
            arrays.append(rng.standard_normal(O).astype(np.float32))
        y, gy, g = grads(F.linear, arrays, rng)
        a = dict(x=arrays[0], weight=arrays[1], y=y, grad_out=gy, grad_x=g[0], grad_weight=g[1])
        if bias:
            a.update(bias=arrays[2], grad_bias=g[2])
        cases.append(dict(name=f"linear{k}", options=dict(op="linear", bias=bias), arrays=a))
    x = (rng.standard_normal((3, 4, 5)) * 4).astype(np.float32)
    x[0, 0, :3] = [0.0, 30.0, -30.0]  # relu at exactly 0, saturated sigmoid / tanh
    for op, fn in (("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        y, gy, g = grads(fn, [x], rng)
        cases.append(dict(name=op, options=dict(op=op), arrays=dict(x=x, y=y, grad_out=gy, grad_x=g[0])))
    for k, (N, K, scale) in enumerate([(6, 10, 1.0), (4, 3, 50.0), (1, 2, 1.0), (8, 10, 1e3)]):
        logits = (rng.standard_normal((N, K)) * scale).astype(np.float32)
        target = rng.integers(0, K, N)
        y, gy, g = grads(lambda z: F.cross_entropy(z, torch.tensor(target)), [logits], rng)
        cases.append(dict(name=f"cross_entropy{k}", options=dict(op="cross_entropy"),
                          arrays=dict(logits=logits, target=target, y=y, grad_out=gy, grad_logits=g[0])))
    return cases


def sgd_cases(rng, steps=100):
    """Every combination of momentum, dampening, weight decay, Nesterov and maximize: 100 steps each."""
    cases = []
    p0 = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]
    grad_seq = [[rng.standard_normal(p.shape).astype(np.float32) for p in p0] for _ in range(steps)]
    for k, (mom, damp, wd, nest, maxi) in enumerate(itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.01],
                                                                        [False, True], [False, True])):
        if nest and (mom == 0 or damp != 0):
            continue
        ps = [torch.tensor(p, requires_grad=True) for p in p0]
        opt = torch.optim.SGD(ps, lr=0.05, momentum=mom, dampening=damp, weight_decay=wd, nesterov=nest,
                              maximize=maxi)
        for gs in grad_seq:
            for p, g in zip(ps, gs):
                p.grad = torch.tensor(g)
            opt.step()
        arrays = {f"p{i}": p.detach().numpy() for i, p in enumerate(ps)}
        if mom:
            arrays.update({f"buf{i}": opt.state[p]["momentum_buffer"].numpy() for i, p in enumerate(ps)})
        cases.append(dict(name=f"sgd{k:02d}", options=dict(lr=0.05, momentum=mom, dampening=damp, weight_decay=wd,
                                                           nesterov=nest, maximize=maxi), arrays=arrays))
    inputs = {f"init{i}": p for i, p in enumerate(p0)}
    inputs.update({f"grads{i}": np.stack([gs[i] for gs in grad_seq]) for i in range(len(p0))})
    cases.append(dict(name="inputs", options=dict(steps=steps), arrays=inputs))
    return cases


def main():
    rng = np.random.default_rng(1)
    save_cases(GOLDEN_DIR / "functional.npz", functional_cases(rng))
    save_cases(GOLDEN_DIR / "sgd.npz", sgd_cases(rng))
    print("wrote functional.npz and sgd.npz")


if __name__ == "__main__":
    main()
