"""D2L 6.4: multiple input and output channels, and the 1x1 convolution as a matrix product."""
import numpy as np

import numbacnn as nc
from numbacnn import reference as ref

X = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
              [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]], dtype=np.float32)
K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)

# 6.4.1 Multiple input channels: correlate per channel and add
print("two input channels:\n", nc.conv2d(X[None], K[None])[0, 0])  # [[56, 72], [104, 120]]

# 6.4.2 Multiple output channels: one kernel stack per output channel
K3 = np.stack((K, K + 1, K + 2), 0)
print("three output channels:\n", nc.conv2d(X[None], K3)[0])

# 6.4.3 A 1x1 convolution is a fully connected layer applied at every pixel
rng = np.random.default_rng(0)
X = rng.normal(0, 1, (3, 3, 3)).astype(np.float32)
K = rng.normal(0, 1, (2, 3, 1, 1)).astype(np.float32)
Y1 = ref.corr2d_multi_in_out_1x1(X, K)
Y2 = nc.conv2d(X[None], K)[0]
print("1x1 convolution equals the matrix product:", float(np.abs(Y1 - Y2).max()) < 1e-6)
