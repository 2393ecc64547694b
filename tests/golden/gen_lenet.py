"""Write tests/golden/lenet.npz: 20 SGD steps of both LeNet variants in PyTorch, with and without momentum.

Run from the repository root: ``python tests/golden/gen_lenet.py`` (needs torch; the tests do not).

Stored (see format.py): case "data" with the initial weights (one set: both variants have the same
parameter shapes and state_dict keys) and 20 batches of 8 images as uint8 (the network sees them / 255);
one case per (variant, lr, momentum) with the loss of each step and every parameter after the 20 steps.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from format import save_cases  # noqa: E402

STEPS, BATCH = 20, 8
CASES = [  # (variant, lr, momentum)
    ("d2l", 0.9, 0.0),
    ("d2l", 0.1, 0.9),
    ("modern", 0.1, 0.0),
    ("modern", 0.05, 0.9),
]


def torch_lenet(variant):
    """The book's LeNet (D2L 6.6); "modern" uses ReLU and max pooling."""
    act = nn.Sigmoid if variant == "d2l" else nn.ReLU
    pool = (lambda: nn.AvgPool2d(kernel_size=2, stride=2)) if variant == "d2l" else (
        lambda: nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), act(), pool(),
        nn.Conv2d(6, 16, kernel_size=5), act(), pool(),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, 10))


def make_data(seed=0):
    """Initial weights (book's Xavier init) and the batches: (state dict of arrays, images uint8, labels)."""
    torch.manual_seed(seed)
    net = torch_lenet("d2l")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    init = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    images = torch.randint(0, 256, (STEPS, BATCH, 1, 28, 28), generator=g, dtype=torch.uint8).numpy()
    labels = torch.randint(0, 10, (STEPS, BATCH), generator=g).numpy().astype(np.int64)
    return init, images, labels


def run(variant, lr, momentum, init, images, labels):
    """[loss per step] and the final state dict after len(images) steps of torch.optim.SGD."""
    net = torch_lenet(variant)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init.items()})
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for xb, yb in zip(images, labels):
        x = torch.from_numpy(xb.astype(np.float32) / 255)
        loss = loss_fn(net(x), torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses, dtype=np.float32), {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def main():
    torch.use_deterministic_algorithms(True)
    init, images, labels = make_data()
    cases = [{"name": "data", "options": {"steps": STEPS, "batch": BATCH, "torch": torch.__version__},
              "arrays": {"images": images, "labels": labels, **{f"init.{k}": v for k, v in init.items()}}}]
    for variant, lr, momentum in CASES:
        losses, final = run(variant, lr, momentum, init, images, labels)
        cases.append({"name": f"{variant}_lr{lr}_m{momentum}",
                      "options": {"variant": variant, "lr": lr, "momentum": momentum},
                      "arrays": {"losses": losses, **{f"final.{k}": v for k, v in final.items()}}})
        print(f"{variant} lr={lr} momentum={momentum}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    out = Path(__file__).resolve().parent / "lenet.npz"
    save_cases(out, cases)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
