"""D2L 6.3: how padding and stride change the output shape."""
import numpy as np

import numbacnn as nc

X = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)


def shape(kernel, **opts):
    return nc.conv2d(X, np.ones((1, 1) + kernel, np.float32), **opts).shape[2:]


print("3x3 kernel, padding 1:            ", shape((3, 3), padding=1))  # (8, 8)
print("5x3 kernel, padding (2, 1):       ", shape((5, 3), padding=(2, 1)))  # (8, 8)
print("3x3 kernel, padding 1, stride 2:  ", shape((3, 3), padding=1, stride=2))  # (4, 4)
print("3x5 kernel, padding (0, 1), stride (3, 4):", shape((3, 5), padding=(0, 1), stride=(3, 4)))  # (2, 2)
print("4x4 kernel, padding 'same' (PyTorch pads the extra row/column at the bottom/right):",
      shape((4, 4), padding="same"))
