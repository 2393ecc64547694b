"""LeNet (numbacnn.models): D2L 6.6's network as a ``numbacnn.nn.Sequential`` with PyTorch's layer indices."""
from __future__ import annotations

from . import nn
from .nn.initialization import make_rng

VARIANTS = ("d2l", "modern")
INITS = ("xavier", "default")


def lenet(variant: str = "d2l", *, init: str = "xavier", seed=None) -> nn.Sequential:
    """LeNet-5 for 1x28x28 images -> 10 logits.

    ``variant="d2l"`` is the book's network::

        Conv2d(1, 6, 5, padding=2), Sigmoid, AvgPool2d(2, 2), Conv2d(6, 16, 5), Sigmoid, AvgPool2d(2, 2),
        Flatten, Linear(400, 120), Sigmoid, Linear(120, 84), Sigmoid, Linear(84, 10)

    ``"modern"`` swaps in ReLU and max pooling (same parameter shapes and state_dict keys).
    ``init="xavier"`` re-draws every Conv2d / Linear weight with Xavier-uniform, as the book's ``init_cnn``
    does (biases keep PyTorch's default); ``"default"`` keeps PyTorch's default initialisation.
    ``seed`` (int, Generator or None) makes the weights reproducible.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    rng = make_rng(seed, "seed")
    act = nn.Sigmoid if variant == "d2l" else nn.ReLU

    def pool():
        return nn.AvgPool2d(kernel_size=2, stride=2) if variant == "d2l" else nn.MaxPool2d(kernel_size=2, stride=2)

    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2, rng=rng), act(), pool(),
        nn.Conv2d(6, 16, kernel_size=5, rng=rng), act(), pool(),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120, rng=rng), act(),
        nn.Linear(120, 84, rng=rng), act(),
        nn.Linear(84, 10, rng=rng),
    )
    if init == "xavier":
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, rng=rng)
    return net
