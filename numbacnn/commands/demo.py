"""`numbacnn demo` (numbacnn.commands.demo): the book's edge detection (D2L 6.2.3) computed by the Numba kernels."""
import click

from ._common import device_option


@click.command("demo")
@device_option(help="Device the kernel runs on: cpu, cuda or cudasim (Numba's CUDA simulator). --target is the "
                    "old name.")
def cli(device):
    """Detect the edges of the book's 6x8 image with the kernel [[1, -1]] and print every array."""
    from numbacnn.cli import ensure_cudasim, fail

    ensure_cudasim(device)
    import numpy as np

    import numbacnn as nc
    from numbacnn.cuda import NoGPUError

    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]], dtype=np.float32)
    try:
        Y = nc.conv2d(X[None, None], K[None, None], device=device)
    except NoGPUError as exc:
        fail(str(exc))
    if device != "cpu":
        from numbacnn.cuda import to_host
        Y = to_host(Y)
    np.set_printoptions(linewidth=120)
    click.echo(f"input X (6x8, a dark band in columns 2-5):\n{X}\n\nkernel K = {K.tolist()}\n")
    click.echo(f"Y = conv2d(X, K) on {device}: +1 where light turns dark, -1 where dark turns light\n{Y[0, 0]}")
