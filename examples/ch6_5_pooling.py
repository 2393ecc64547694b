"""D2L 6.5: maximum, average (and minimum) pooling, padding and stride, several channels, global pooling."""
import numpy as np

import numbacnn as nc

X = np.arange(9.0, dtype=np.float32).reshape(1, 1, 3, 3)
print("2x2 max pooling:\n", nc.max_pool2d(X, 2, stride=1)[0, 0])  # [[4, 5], [7, 8]]
print("2x2 average pooling:\n", nc.avg_pool2d(X, 2, stride=1)[0, 0])  # [[2, 3], [5, 6]]
print("2x2 min pooling:\n", nc.min_pool2d(X, 2, stride=1)[0, 0])  # [[0, 1], [3, 4]]

# 6.5.2 Padding and stride: by default the stride equals the window size
X = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
print("3x3 window, default stride 3:\n", nc.max_pool2d(X, 3)[0, 0])  # [[10]]
print("3x3 window, padding 1, stride 2:\n", nc.max_pool2d(X, 3, padding=1, stride=2)[0, 0])  # [[5, 7], [13, 15]]
print("2x3 window, padding (0, 1), stride (2, 3):\n", nc.max_pool2d(X, (2, 3), padding=(0, 1), stride=(2, 3))[0, 0])

# 6.5.3 Multiple channels: pooling works on each channel separately
X2 = np.concatenate((X, X + 1), 1)
print("two channels in, two channels out:\n", nc.max_pool2d(X2, 3, padding=1, stride=2)[0])

# Global average pooling: one number per channel
print("global average pooling:", nc.adaptive_avg_pool2d(X2, 1).ravel())
