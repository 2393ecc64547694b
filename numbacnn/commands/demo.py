"""`numbacnn demo`: the book's edge detection (D2L 6.2.3) computed by the Numba kernels."""
import click


@click.command("demo")
@click.option("--target", type=click.Choice(["cpu", "cuda", "cudasim"]), default="cpu", show_default=True,
              help="Where the kernel runs.")
def cli(target):
    """Detect the edges of the book's 6x8 image with the kernel [[1, -1]] and print every array."""
    from numbacnn.cli import ensure_cudasim, fail

    ensure_cudasim(target)
    import numpy as np

    import numbacnn as nc
    from numbacnn.cuda import NoGPUError

    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]], dtype=np.float32)
    try:
        Y = nc.conv2d(X[None, None], K[None, None], target=target)
    except NoGPUError as exc:
        fail(str(exc))
    if target != "cpu":
        from numbacnn.cuda import to_host
        Y = to_host(Y)
    np.set_printoptions(linewidth=120)
    click.echo(f"input X (6x8, a dark band in columns 2-5):\n{X}\n\nkernel K = {K.tolist()}\n")
    click.echo(f"Y = conv2d(X, K) on {target}: +1 where light turns dark, -1 where dark turns light\n{Y[0, 0]}")
