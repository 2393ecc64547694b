"""D2L 6.6: build, train and evaluate LeNet on Fashion-MNIST with numbacnn's Python API.

    python examples/lenet.py                    # 4096 examples, 2 epochs, a recipe that learns fast (below)
    python examples/lenet.py --variant d2l --lr 0.9 --momentum 0 --batch-size 256 --limit 0 --epochs 10
                                                # the book's recipe, all 60000 images: test acc 0.814, ~30 s

The default recipe is ReLU + max pooling ("modern"), SGD with momentum 0.9, lr 0.03, batches of 64: its 128
steps reach test accuracy 0.72 (chance is 0.10; 2-3 s once the kernels are compiled). The book's sigmoid network
with plain SGD stays at chance (loss 2.30) for its first ~300 steps, whatever the data size: epoch 1 of the full
run above ends at test acc 0.100, epoch 2 at 0.627. On 4096 examples (16 steps an epoch) it would need ~20 epochs.
``--synthetic`` trains on random stand-in images instead (no data needed).
The same loop with a progress bar, plots and checkpoints is ``numbacnn train-lenet``.
"""
import argparse

import numpy as np

import numbacnn as nc
from numbacnn.data import load_fashion_mnist
from numbacnn.models import lenet
from numbacnn.train import evaluate, train_epoch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--limit", type=int, default=4096, help="training/test examples to use (0: all)")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--variant", default="modern", choices=["d2l", "modern"],
                    help="modern: ReLU + max pooling; d2l: the book's sigmoid LeNet (slow to start learning)")
parser.add_argument("--lr", type=float, default=0.03, help="the book's recipe: 0.9")
parser.add_argument("--momentum", type=float, default=0.9, help="the book's recipe: 0")
parser.add_argument("--batch-size", type=int, default=64, help="the book's recipe: 256")
parser.add_argument("--device", default="cpu", help="cpu, cuda or cudasim (needs NUMBA_ENABLE_CUDASIM=1)")
parser.add_argument("--synthetic", action="store_true", help="random images instead of Fashion-MNIST")
args = parser.parse_args()
limit = args.limit or None

# 1. Data: float32 images (N, 1, 28, 28) in [0, 1] and int64 labels (N,).
if args.synthetic:
    rng = np.random.default_rng(0)
    n = limit or 2048
    y_train, y_test = rng.integers(0, 10, n), rng.integers(0, 10, n)
    # Each class gets its own bright square, so there is something to learn.
    x_train, x_test = (rng.random((n, 1, 28, 28), dtype=np.float32) * 0.3 for _ in range(2))
    for x, y in ((x_train, y_train), (x_test, y_test)):
        for i, label in enumerate(y):
            r, c = divmod(int(label), 5)
            x[i, 0, 4 + 10 * r:12 + 10 * r, 1 + 5 * c:5 + 5 * c] += 0.7
else:
    ds = load_fashion_mnist()
    x_train, y_train = ds.train_images[:limit], ds.train_labels[:limit]
    x_test, y_test = ds.test_images[:limit], ds.test_labels[:limit]
print(f"{len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")

# 2. LeNet with Xavier init: the book's has sigmoid activations and average pooling ("modern": ReLU, max pooling).
net = lenet(args.variant, init="xavier", seed=0).to(args.device)
print(net)
for name, p in net.named_parameters():
    print(f"  {name:10s} {p.shape}")

# 3. Minibatch SGD, exactly torch.optim.SGD's update.
optimizer = nc.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
for epoch in range(args.epochs):
    loss_sum, correct, seen = train_epoch(net, optimizer, x_train, y_train, batch_size=args.batch_size, seed=0,
                                          epoch=epoch)
    test_acc = evaluate(net, x_test, y_test)
    print(f"epoch {epoch + 1}: loss {loss_sum / seen:.3f}, train acc {correct / seen:.3f}, test acc {test_acc:.3f}")

# 4. One batch by hand: forward, loss, backward (gradients land in p.grad), update.
loss_fn = nc.nn.CrossEntropyLoss()
xb, yb = x_test[:8], y_test[:8]
if args.device != "cpu":
    xb = nc.cuda.to_device(xb)
logits = net.forward(xb)
loss = loss_fn(logits, yb)
optimizer.zero_grad()
net.backward(loss_fn.backward())
optimizer.step()
weights = net.state_dict()  # host copies of the weights after the step
print(f"one more step on 8 test images: loss {float(nc.cuda.to_host(loss) if args.device != 'cpu' else loss):.3f}; "
      f"first kernel of the first layer now:\n{np.round(weights['0.weight'][0, 0], 3)}")
