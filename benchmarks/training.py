"""LeNet training cases: one full step (forward, loss, backward, SGD) and one Fashion-MNIST epoch."""
from __future__ import annotations

import gzip
import os

import numpy as np

from ops import Case

# Nominal float operations of one LeNet training example (forward + backward of conv, pooling, linear):
# conv1 0.24 M + conv2 0.48 M + linear 0.12 M + pooling ~0.01 M forward, about three times that in training.
VARIANTS = ("d2l", "modern")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def lenet_train_flops():
    """Float operations of one training example of LeNet (either variant), forward + both backward passes."""
    conv = 2 * (6 * 28 * 28 * 1 * 25) + 2 * (16 * 10 * 10 * 6 * 25)
    lin = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    pool = 6 * 28 * 28 + 16 * 10 * 10
    return 3 * (conv + lin) + 2 * pool


def torch_lenet(torch, variant, device):
    """PyTorch's LeNet (d2l: sigmoid + average pooling; modern: ReLU + max pooling), Xavier-initialised."""
    nn = torch.nn
    act = nn.Sigmoid if variant == "d2l" else nn.ReLU
    pool = nn.AvgPool2d if variant == "d2l" else nn.MaxPool2d
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), act(), pool(2, 2), nn.Conv2d(6, 16, 5), act(), pool(2, 2),
                        nn.Flatten(), nn.Linear(400, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, 10))
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return net.to(device)


def torch_step(torch, net, opt):
    F = torch.nn.functional

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def numbacnn_lenet(variant, target):
    """numbacnn's LeNet, its optimizer and train_step; None when numbacnn.models / numbacnn.train are missing."""
    try:
        from numbacnn import models, optim, train
    except ImportError:
        return None
    model = models.lenet(variant=variant)
    if target == "cuda":
        model.to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.9)
    return model, opt, train.train_step


def load_train_images(limit=None):
    """Fashion-MNIST training images (N, 1, 28, 28) float32 in [0, 1] and labels, or None when absent."""
    try:
        from numbacnn.data import load_fashion_mnist

        data = load_fashion_mnist(download_missing=False, progress=False)
        x, y = data[0], data[1]
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 3:
            x = x[:, None]
        if x.dtype != np.float32 or x.max() > 1.0:
            x = x.astype(np.float32) / (255.0 if x.max() > 1.0 else 1.0)
        return x[:limit], y[:limit].astype(np.int64), "numbacnn.data"
    except Exception:
        pass
    paths = [os.path.join(FASHION_DIR, f) for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")]
    if not all(os.path.exists(p) for p in paths):
        return None
    with gzip.open(paths[0]) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(paths[1]) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = x[:limit].astype(np.float32) / 255.0
    return x, y[:limit].astype(np.int64), FASHION_DIR


def training_cases(be, batch=256, seed=0, epoch=True, limit=None, notes=None):
    """Full training steps of both variants, then (``epoch``) one Fashion-MNIST epoch of each."""
    torch = be.torch
    rng = np.random.default_rng(seed)
    notes = notes if notes is not None else []
    flops = lenet_train_flops()
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    cases = []
    nets = {}
    for variant in VARIANTS:
        nb = numbacnn_lenet(variant, be.target)
        if nb is None:
            notes.append("numbacnn.models / numbacnn.train not found: training rows skipped")
            return cases
        model, opt, train_step = nb
        # Batches start on the host on both sides, as in real training: numbacnn's train_step copies them
        # to the model's device, and torch's step gets x.to(device) (a no-op on the CPU).
        step_nb = lambda model=model, opt=opt, train_step=train_step: train_step(model, opt, x, y)
        step_th = None
        if torch is not None:
            net = torch_lenet(torch, variant, be.torch_device)
            topt = torch.optim.SGD(net.parameters(), lr=0.9)
            tstep = torch_step(torch, net, topt)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            dev = be.torch_device
            step_th = lambda tstep=tstep, tx=tx, ty=ty, dev=dev: tstep(tx.to(dev), ty.to(dev))
        nets[variant] = (model, opt, train_step, tstep if torch is not None else None)
        cases.append(Case("step", f"LeNet {variant} training step", f"batch {batch}", flops * batch, step_nb,
                          step_th, examples=batch))
    if not epoch:
        return cases
    data = load_train_images(limit)
    if data is None:
        notes.append(f"Fashion-MNIST not found (numbacnn.data, {FASHION_DIR}): epoch rows skipped")
        return cases
    X, Y, source = data
    notes.append(f"epoch: {len(X)} Fashion-MNIST training images from {source}, batch {batch}, shuffled, "
                 f"last partial batch kept")
    tX, tY = (torch.from_numpy(X), torch.from_numpy(Y)) if torch is not None else (None, None)
    for variant in VARIANTS:
        model, opt, train_step, tstep = nets[variant]
        order = np.random.default_rng(seed).permutation(len(X))
        batches = [order[i:i + batch] for i in range(0, len(X), batch)]

        def epoch_nb(model=model, opt=opt, train_step=train_step):
            for idx in batches:
                train_step(model, opt, X[idx], Y[idx])
        epoch_th = None
        if tstep is not None:
            tb = [torch.from_numpy(idx) for idx in batches]
            dev = be.torch_device

            def epoch_th(tstep=tstep, tb=tb, dev=dev):
                for idx in tb:
                    tstep(tX[idx].to(dev), tY[idx].to(dev))
        cases.append(Case("epoch", f"LeNet {variant} epoch", f"{len(X)} images, batch {batch}", flops * len(X),
                          epoch_nb, epoch_th, examples=len(X)))
    return cases
