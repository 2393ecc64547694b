"""D2L 6.2: cross-correlation, edge detection, and learning a kernel from data, with numbacnn's kernels."""
import numpy as np

import numbacnn as nc

# 6.2.1 The cross-correlation operation
X = np.arange(9.0).reshape(3, 3)
K = np.array([[0.0, 1.0], [2.0, 3.0]])
print("corr2d(X, K) =\n", nc.corr2d(X, K))

# 6.2.3 Object edge detection in images: a 6x8 image, dark in columns 2..5
X = np.ones((6, 8), dtype=np.float32)
X[:, 2:6] = 0
K = np.array([[1.0, -1.0]], dtype=np.float32)
Y = nc.corr2d(X, K)
print("edges (1: light to dark, -1: dark to light):\n", Y)
print("the same kernel sees no vertical edge in X.T:\n", nc.corr2d(X.T, K))

# 6.2.4 Learning a kernel: find K from X and Y alone, by gradient descent on the squared error
rng = np.random.default_rng(0)
weight = rng.standard_normal((1, 1, 1, 2)).astype(np.float32)  # out, in, height, width
x, y = X.reshape(1, 1, 6, 8), Y.reshape(1, 1, 6, 7)
lr = 3e-2
for i in range(10):
    y_hat = nc.conv2d(x, weight)
    loss = ((y_hat - y) ** 2).sum()
    _, grad_w, _ = nc.conv2d_backward(2 * (y_hat - y), x, weight)  # d loss / d y_hat = 2 (y_hat - y)
    weight -= lr * grad_w
    if (i + 1) % 2 == 0:
        print(f"epoch {i + 1}, loss {loss:.3f}")
print("learned kernel:", weight.reshape(1, 2))

# 6.2.5 Cross-correlation vs convolution: strict convolution flips the kernel
print("convolution (flip=True) of the edge image:\n", nc.conv2d(x, K.reshape(1, 1, 1, 2), flip=True)[0, 0])
