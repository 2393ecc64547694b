"""numbacnn's CUDA kernels from a script: a convolution and a pooling on the GPU, checked against the CPU kernels.

Without a GPU the script re-runs itself under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), which runs every
GPU thread as Python: the same kernels and numbers, only slow, so the shapes here are tiny.
"""
import os
import subprocess
import sys


def gpu_or_simulator() -> str:
    """'gpu' or 'simulator'; re-runs this script under the simulator when there is no GPU."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "simulator"
    try:
        from numba import cuda

        if cuda.is_available():
            return "gpu"
    except Exception:  # numba-cuda missing or broken: the simulator still works
        pass
    print("no CUDA GPU found: re-running under Numba's CUDA simulator")
    # The simulator must be on before numba is imported, and numba is imported now: start a fresh process.
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)


where = gpu_or_simulator()

import numpy as np  # noqa: E402

import numbacnn as nc  # noqa: E402
from numbacnn.cuda import config, to_device, to_host  # noqa: E402
from numbacnn.cuda.conv import conv2d_forward_kernel1  # noqa: E402

if where == "simulator":
    config.set_threads_per_block(32)  # small blocks: the simulator pays for every thread
    config.set_tile(4)

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)  # 2 images, 1 channel, 6x6
w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)  # 3 output channels, 3x3 kernels
b = rng.standard_normal(3).astype(np.float32)
failures = 0


def check(what, got, want, tol=1e-5):
    global failures
    diff = float(np.max(np.abs(to_host(got) - want)))
    ok = diff <= tol
    failures += not ok
    print(f"{what:<46} max |GPU - CPU| = {diff:.2e}  {'OK' if ok else 'MISMATCH'}")


print(f"running on the {where}; {config.threads_per_block} threads per block, {config.tile}x{config.tile} tiles")

# 1. The public API: the same call as on the CPU, with device="cuda". The result stays on the GPU.
y_cpu = nc.conv2d(x, w, b, padding=1)
y = nc.conv2d(x, w, b, padding=1, device="cuda")
print("conv2d returned a", type(y).__name__, "of shape", tuple(y.shape))
check("conv2d, fastest kernel (shared-memory tiles)", y, y_cpu)
check("conv2d, kernel=1 (one thread per output)", nc.conv2d(x, w, b, padding=1, device="cuda", kernel=1), y_cpu)

# 2. A kernel launched by hand: one thread per output element, ceil(size / threads) blocks.
dx, dw, db = to_device(x), to_device(w), to_device(b)
out = to_device(np.zeros_like(y_cpu))
blocks = (out.size + config.threads_per_block - 1) // config.threads_per_block
# geometry: stride (1, 1), padding top/left (1, 1), dilation (1, 1), groups 1
conv2d_forward_kernel1[blocks, config.threads_per_block](dx, dw, db, out, 1, 1, 1, 1, 1, 1, 1)
check(f"conv2d_forward_kernel1[{blocks}, {config.threads_per_block}] by hand", out, y_cpu)

# 3. Pooling the conv output without bringing it back: device arrays go straight into the next op.
p_cpu = nc.max_pool2d(y_cpu, 2)
p = nc.max_pool2d(y, 2, device="cuda")
check("max_pool2d of the device result", p, p_cpu)
check("avg_pool2d (padding 1, stride 2)", nc.avg_pool2d(y, 3, stride=2, padding=1, device="cuda"),
      nc.avg_pool2d(y_cpu, 3, stride=2, padding=1))

# 4. Backward passes: gradients of the pooling and of the convolution.
gp = np.ones(p_cpu.shape, np.float32)
gy_cpu = nc.max_pool2d_backward(gp, y_cpu, 2)
gy = nc.max_pool2d_backward(gp, y, 2, device="cuda")
check("max_pool2d_backward", gy, gy_cpu)
grads_cpu = nc.conv2d_backward(gy_cpu, x, w, b, padding=1)
grads = nc.conv2d_backward(gy, x, w, b, padding=1, device="cuda")
for name, g, g_cpu in zip(("grad_x", "grad_weight", "grad_bias"), grads, grads_cpu):
    check(f"conv2d_backward {name}", g, g_cpu, tol=1e-4)

print("all GPU results match the CPU" if not failures else f"{failures} mismatches", flush=True)
sys.exit(1 if failures else 0)
