"""LeNet-shaped op cases: the same op on the same data in numbacnn and (optionally) PyTorch.

A ``Case`` holds two zero-argument callables (numbacnn's and torch's, the latter None without torch),
the nominal float operations of one call, and a short description of the shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Case:
    group: str            # "op", "step" or "epoch"
    name: str             # e.g. "conv1 forward"
    shape: str            # e.g. "256x1x28x28 -> 6x5x5 pad 2"
    flops: float | None   # nominal float operations of one call (None: not meaningful)
    nb: Callable | None
    torch: Callable | None
    examples: int | None = None  # examples processed per call (training rows)


class Backend:
    """Where the inputs live and how to wait for the device: 'cpu' (NumPy, torch CPU) or 'cuda'."""

    def __init__(self, target, torch=None):
        self.target = target
        self.torch = torch
        if target == "cuda":
            from numba import cuda

            self._cuda = cuda
            self.nb_sync = cuda.synchronize
            self.torch_sync = torch.cuda.synchronize if torch is not None else None
            self.torch_device = "cuda"
        else:
            self.nb_sync = self.torch_sync = None
            self.torch_device = "cpu"

    def nb(self, a):
        """A NumPy array as numbacnn's input on the target (a device array for CUDA)."""
        return self._cuda.to_device(a) if self.target == "cuda" else a

    def th(self, a, grad=False):
        t = self.torch.tensor(a, device=self.torch_device)
        return t.requires_grad_(True) if grad else t


LENET_PARAM_SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]


def op_cases(be: Backend, batch: int = 256, seed: int = 0):
    """Every LeNet-shaped op, forward and backward, as a list of Cases."""
    import numbacnn as nc

    torch = be.torch
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(seed)
    t = be.target
    N = batch

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def tgrad(y, inputs, gy):
        return lambda: torch.autograd.grad(y, inputs, gy, retain_graph=True)

    cases = []

    # -- convolutions
    for name, (C, H, O, K, pad) in {"conv1": (1, 28, 6, 5, 2), "conv2": (6, 14, 16, 5, 0)}.items():
        x, w, b = rand(N, C, H, H), rand(O, C, K, K) * 0.2, rand(O)
        HO = H + 2 * pad - K + 1
        gy = rand(N, O, HO, HO)
        shape = f"{N}x{C}x{H}x{H} -> {O}x{K}x{K}" + (f" pad {pad}" if pad else "")
        fl = 2.0 * N * O * HO * HO * C * K * K
        xd, wd, bd, gyd = map(be.nb, (x, w, b, gy))
        fwd_nb = lambda xd=xd, wd=wd, bd=bd, pad=pad: nc.conv2d(xd, wd, bd, padding=pad, device=t)
        bwd_nb = lambda gyd=gyd, xd=xd, wd=wd, bd=bd, pad=pad: nc.conv2d_backward(gyd, xd, wd, bd, padding=pad,
                                                                                   device=t)
        fwd_th = bwd_th = None
        if torch is not None:
            tx, tw, tb = be.th(x, True), be.th(w, True), be.th(b, True)
            ty = F.conv2d(tx, tw, tb, padding=pad)

            def fwd_th(tx=tx, tw=tw, tb=tb, pad=pad):
                with torch.no_grad():
                    return F.conv2d(tx, tw, tb, padding=pad)
            bwd_th = tgrad(ty, (tx, tw, tb), be.th(gy))
        cases.append(Case("op", f"{name} forward", shape, fl, fwd_nb, fwd_th))
        cases.append(Case("op", f"{name} backward", shape, 2 * fl + N * O * HO * HO, bwd_nb, bwd_th))

    # -- poolings (2x2, stride 2) at both LeNet shapes
    for kind in ("avg", "max"):
        f_nb, b_nb = getattr(nc, f"{kind}_pool2d"), getattr(nc, f"{kind}_pool2d_backward")
        for C, H in ((6, 28), (16, 10)):
            x = rand(N, C, H, H)
            gy = rand(N, C, H // 2, H // 2)
            xd, gyd = be.nb(x), be.nb(gy)
            fl = float(N * C * H * H)
            fwd_nb = lambda f=f_nb, xd=xd: f(xd, 2, 2, device=t)
            bwd_nb = lambda f=b_nb, xd=xd, gyd=gyd: f(gyd, xd, 2, 2, device=t)
            if kind == "max":  # as PyTorch's backward: with the forward's indices (nn.MaxPool2d keeps them too)
                idxd = f_nb(xd, 2, 2, return_indices=True, device=t)[1]
                bwd_nb = lambda f=b_nb, xd=xd, gyd=gyd, idxd=idxd: f(gyd, xd, 2, 2, indices=idxd, device=t)
            fwd_th = bwd_th = None
            if torch is not None:
                tf = getattr(F, f"{kind}_pool2d")
                tx = be.th(x, True)
                ty = tf(tx, 2, 2)

                def fwd_th(tf=tf, tx=tx):
                    with torch.no_grad():
                        return tf(tx, 2, 2)
                bwd_th = tgrad(ty, (tx,), be.th(gy))
            shape = f"{N}x{C}x{H}x{H}, 2x2 stride 2"
            cases.append(Case("op", f"{kind} pool forward", shape, fl, fwd_nb, fwd_th))
            cases.append(Case("op", f"{kind} pool backward", shape, fl, bwd_nb, bwd_th))

    # -- fully connected layers
    for I, O in ((400, 120), (120, 84), (84, 10)):
        x, w, b, gy = rand(N, I), rand(O, I) * 0.05, rand(O), rand(N, O)
        xd, wd, bd, gyd = map(be.nb, (x, w, b, gy))
        fl = 2.0 * N * I * O
        fwd_nb = lambda xd=xd, wd=wd, bd=bd: nc.linear(xd, wd, bd, device=t)
        bwd_nb = lambda gyd=gyd, xd=xd, wd=wd, bd=bd: nc.linear_backward(gyd, xd, wd, bd, device=t)
        fwd_th = bwd_th = None
        if torch is not None:
            tx, tw, tb = be.th(x, True), be.th(w, True), be.th(b, True)
            ty = F.linear(tx, tw, tb)

            def fwd_th(tx=tx, tw=tw, tb=tb):
                with torch.no_grad():
                    return F.linear(tx, tw, tb)
            bwd_th = tgrad(ty, (tx, tw, tb), be.th(gy))
        shape = f"{N}x{I} -> {O}"
        cases.append(Case("op", f"linear {I}->{O} forward", shape, fl, fwd_nb, fwd_th))
        cases.append(Case("op", f"linear {I}->{O} backward", shape, 2 * fl + N * O, bwd_nb, bwd_th))

    # -- activations at the largest (conv1 output) and a small (linear) LeNet shape
    for act, per_elem in (("sigmoid", 4.0), ("relu", 1.0)):
        f_nb, b_nb = getattr(nc, act), getattr(nc, f"{act}_backward")
        for shape_ in ((N, 6, 28, 28), (N, 120)):
            x, gy = rand(*shape_), rand(*shape_)
            xd, gyd = be.nb(x), be.nb(gy)
            fwd_nb = lambda f=f_nb, xd=xd: f(xd, device=t)
            bwd_nb = lambda f=b_nb, xd=xd, gyd=gyd: f(gyd, xd, device=t)
            if act == "sigmoid":  # as PyTorch's backward: from the forward's output (nn.Sigmoid does the same)
                yd = f_nb(xd, device=t)
                bwd_nb = lambda f=b_nb, xd=xd, gyd=gyd, yd=yd: f(gyd, xd, y=yd, device=t)
            fwd_th = bwd_th = None
            if torch is not None:
                tf = getattr(torch, act)
                tx = be.th(x, True)
                ty = tf(tx)

                def fwd_th(tf=tf, tx=tx):
                    with torch.no_grad():
                        return tf(tx)
                bwd_th = tgrad(ty, (tx,), be.th(gy))
            shape = "x".join(map(str, shape_))
            cases.append(Case("op", f"{act} forward", shape, per_elem * x.size, fwd_nb, fwd_th))
            cases.append(Case("op", f"{act} backward", shape, (per_elem + 2) * x.size, bwd_nb, bwd_th))

    # -- cross-entropy (mean over the batch, 10 classes)
    logits = rand(N, 10)
    labels = rng.integers(0, 10, N).astype(np.int64)
    ld, yd = be.nb(logits), be.nb(labels)
    fwd_nb = lambda: nc.cross_entropy(ld, yd)
    bwd_nb = lambda: nc.cross_entropy_backward(1.0, ld, yd)
    fwd_th = bwd_th = None
    if torch is not None:
        tl, ty_ = be.th(logits, True), be.th(labels)
        loss = F.cross_entropy(tl, ty_)

        def fwd_th():
            with torch.no_grad():
                return F.cross_entropy(tl, ty_)
        bwd_th = lambda: torch.autograd.grad(loss, (tl,), retain_graph=True)
    cases.append(Case("op", "cross-entropy forward", f"{N}x10", 5.0 * N * 10, fwd_nb, fwd_th))
    cases.append(Case("op", "cross-entropy backward", f"{N}x10", 6.0 * N * 10, bwd_nb, bwd_th))

    # -- SGD update of every LeNet parameter (plain SGD, as the book trains)
    params = [rand(*s) for s in LENET_PARAM_SHAPES]
    grads = [rand(*s) * 1e-3 for s in LENET_PARAM_SHAPES]
    pd, gd = [be.nb(p) for p in params], [be.nb(g) for g in grads]
    bufs = [None] * len(pd)
    sgd_nb = lambda: nc.optim.sgd(pd, gd, bufs, lr=0.01)
    sgd_th = None
    if torch is not None:
        tp = [be.th(p) for p in params]
        for p_, g in zip(tp, grads):
            p_.grad = be.th(g)
        opt = torch.optim.SGD(tp, lr=0.01)
        sgd_th = opt.step
    n_params = sum(p.size for p in params)
    cases.append(Case("op", "SGD update", f"all LeNet params ({n_params})", 2.0 * n_params, sgd_nb, sgd_th))
    return cases
