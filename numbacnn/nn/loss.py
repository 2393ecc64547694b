"""The loss layer (numbacnn.nn.loss): ``CrossEntropyLoss``, ``numbacnn.cross_entropy`` as a module."""
from __future__ import annotations

from .. import functional as F
from .._checks import is_device_array
from .module import Module, saved_for_backward


def _device_of(logits):
    return "cuda" if is_device_array(logits) else "cpu"


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits (N, K) against integer labels (N,): ``loss = crit(logits, y)``.

    ``backward(grad=1.0)`` returns the gradient of the logits. The loss is a 0-d value on the logits'
    device (a NumPy scalar on the CPU); ``float(loss)`` reads it back.
    """

    def forward(self, logits, target):
        self._saved = (logits, target)
        return F.cross_entropy(logits, target, device=_device_of(logits))

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def backward(self, grad=1.0):
        logits, target = saved_for_backward(self, "logits")
        return F.cross_entropy_backward(grad, logits, target, device=_device_of(logits))
