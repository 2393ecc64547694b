"""Computations the animations replay (numbacnn.scenarios), run by numbacnn's kernels: plain arrays, no drawing.

``learn_kernel``: D2L 6.2.4, learning the edge kernel [[1, -1]] from an image and its edges
(conv2d forward, conv2d_backward for the gradient, numbacnn.optim.sgd for the update).
``sgd_paths``: plain SGD, momentum and Nesterov on a 2-D loss surface, every step by numbacnn.optim.sgd.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# the kernels (numbacnn.conv, numbacnn.optim) load inside the functions that run them: parse_kernel and
# preset_input serve the CLI's argument checks, which should not wait for Numba


def book_image() -> np.ndarray:
    """The book's 6x8 image: ones with a dark band (columns 2-5 are zero), float32."""
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


@dataclass
class LearnKernelRecord:
    """One record per iteration k = 0..steps-1 (arrays stacked along the first axis).

    X (H, W) input, Y (HO, WO) target = X * [[1, -1]]; kernels (steps + 1, KH, KW) kernel before
    iteration k (the last entry is the learned kernel); predictions (steps, HO, WO) = X * kernels[k];
    losses (steps,) = sum (prediction - Y)^2; grads (steps, KH, KW) = d loss / d kernel.
    """

    X: np.ndarray
    Y: np.ndarray
    true_kernel: np.ndarray
    kernels: np.ndarray
    predictions: np.ndarray
    losses: np.ndarray
    grads: np.ndarray
    lr: float
    steps: int = field(init=False)

    def __post_init__(self):
        self.steps = len(self.losses)


def learn_kernel(steps: int = 10, lr: float = 3e-2, seed: int = 0, X=None, true_kernel=None) -> LearnKernelRecord:
    """Fit a kernel to (X, X * true_kernel) by gradient descent on the summed squared error (D2L 6.2.4).

    Starts from PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn with ``seed``.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    from .conv import conv2d, conv2d_backward
    from .optim import check_hyperparameters, sgd

    check_hyperparameters(lr, 0.0, 0.0, 0.0, False)
    X = book_image() if X is None else np.asarray(X, dtype=np.float32)
    K = np.array([[1.0, -1.0]], np.float32) if true_kernel is None else np.asarray(true_kernel, np.float32)
    x4 = X[None, None]
    Y = conv2d(x4, K[None, None])
    bound = 1.0 / np.sqrt(K.size)
    w = np.random.default_rng(seed).uniform(-bound, bound, size=(1, 1) + K.shape).astype(np.float32)
    kernels, preds, losses, grads = [w[0, 0].copy()], [], [], []
    for _ in range(steps):
        Y_hat = conv2d(x4, w)
        diff = Y_hat - Y
        losses.append(float(np.sum(diff.astype(np.float64) ** 2)))
        _, gw, _ = conv2d_backward(2 * diff, x4, w)
        sgd([w], [gw], [None], lr=lr)
        preds.append(Y_hat[0, 0])
        grads.append(gw[0, 0])
        kernels.append(w[0, 0].copy())
    return LearnKernelRecord(X=X, Y=Y[0, 0], true_kernel=K, kernels=np.stack(kernels), predictions=np.stack(preds),
                             losses=np.array(losses), grads=np.stack(grads), lr=float(lr))


# ------------------------------------------------------------------------------------------------
# 2-D loss surfaces: value and gradient, vectorised over the leading axes of x and y


def quadratic(x, y):
    """The ill-conditioned quadratic of D2L 12.6: f = 0.1 x^2 + 2 y^2 (curvatures 0.2 and 4)."""
    return 0.1 * x * x + 2.0 * y * y


def quadratic_grad(x, y):
    return np.array([0.2 * x, 4.0 * y])


def rosenbrock(x, y):
    """Rosenbrock's banana valley: f = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100.0 * (y - x * x) ** 2


def rosenbrock_grad(x, y):
    return np.array([-2 * (1 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


# name -> value, gradient, start, minimum, plot box (xmin, xmax, ymin, ymax), defaults
SURFACES = {
    "quadratic": dict(f=quadratic, grad=quadratic_grad, start=(-5.0, -2.0), minimum=(0.0, 0.0),
                      box=(-5.5, 1.0, -2.6, 2.6), lr=0.3, momentum=0.6, steps=20,
                      formula="f(x, y) = 0.1 x² + 2 y²"),
    "rosenbrock": dict(f=rosenbrock, grad=rosenbrock_grad, start=(-1.2, 1.0), minimum=(1.0, 1.0),
                       box=(-1.7, 1.5, -0.5, 1.9), lr=1.5e-3, momentum=0.9, steps=80,
                       formula="f(x, y) = (1 − x)² + 100 (y − x²)²"),
}

VARIANTS = ("sgd", "momentum", "nesterov")


@dataclass
class SGDPath:
    """One optimizer's run: positions (steps + 1, 2); per step k: grads g_k at positions[k] (steps, 2),
    buffers b_k after step k (steps, 2; zeros without momentum), updates positions[k+1] - positions[k],
    losses f(positions) (steps + 1,)."""

    variant: str
    hyper: dict
    positions: np.ndarray
    grads: np.ndarray
    buffers: np.ndarray
    updates: np.ndarray
    losses: np.ndarray


def sgd_path(surface: str, steps: int, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False, start=None, variant="sgd") -> SGDPath:
    """Run numbacnn.optim.sgd on the 2-vector (x, y) for ``steps`` steps of ``surface``."""
    s = SURFACES[surface]
    from .optim import check_hyperparameters, sgd

    check_hyperparameters(lr, momentum, dampening, weight_decay, nesterov, maximize)
    p = np.array(s["start"] if start is None else start, dtype=np.float64)
    bufs = [None]
    positions, grads, buffers, updates = [p.copy()], [], [], []
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows: inf and nan are its record
        for _ in range(steps):
            g = s["grad"](p[0], p[1]).astype(np.float64)
            before = p.copy()
            sgd([p], [g], bufs, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                nesterov=nesterov, maximize=maximize)
            if not np.all(np.isfinite(p)):
                p[:] = np.nan
            grads.append(g)
            buffers.append(np.zeros(2) if bufs[0] is None else bufs[0].copy())
            updates.append(p - before)
            positions.append(p.copy())
        P = np.array(positions)
        losses = s["f"](P[:, 0], P[:, 1])
    hyper = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                 maximize=maximize)
    return SGDPath(variant, hyper, P, np.array(grads), np.array(buffers), np.array(updates), losses)


def diverged_at(path: SGDPath, factor: float = 10.0) -> int | None:
    """The first position index k whose loss is not finite or above ``factor`` times the starting loss (the run
    diverged), or None."""
    L = path.losses
    bad = ~np.isfinite(L) | (L > factor * max(float(L[0]), 1e-12))
    return int(np.argmax(bad)) if bad.any() else None


def sgd_paths(surface: str = "quadratic", steps: int | None = None, *, lr=None, momentum=None, dampening=0.0,
              weight_decay=0.0, nesterov=None, start=None) -> dict:
    """Plain SGD, momentum and Nesterov from the same start with the same lr (surface defaults when None).

    ``nesterov`` (True/False) picks which momentum variants run: None runs both; False drops Nesterov;
    True drops classical momentum. Returns {"surface", "formula", "box", "minimum", "grid": (X, Y, f(X, Y)) for
    contours, "paths": [SGDPath, ...]}.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, got {surface!r}")
    s = SURFACES[surface]
    steps = s["steps"] if steps is None else steps
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    lr = s["lr"] if lr is None else lr
    momentum = s["momentum"] if momentum is None else momentum
    if momentum <= 0:
        raise ValueError(f"momentum must be positive to compare momentum with plain SGD, got {momentum!r}")
    common = dict(lr=lr, dampening=0.0, weight_decay=weight_decay, start=start)
    paths = [sgd_path(surface, steps, momentum=0.0, variant="sgd", **common)]
    if nesterov is not True:
        paths.append(sgd_path(surface, steps, momentum=momentum, nesterov=False, variant="momentum",
                              **dict(common, dampening=dampening)))
    if nesterov is not False:
        if dampening != 0:
            raise ValueError(f"Nesterov momentum requires zero dampening, got dampening={dampening!r} "
                             "(pass --no-nesterov to compare plain SGD with damped momentum)")
        paths.append(sgd_path(surface, steps, momentum=momentum, nesterov=True, variant="nesterov", **common))
    x0, x1, y0, y1 = s["box"]
    gx, gy = np.meshgrid(np.linspace(x0, x1, 161), np.linspace(y0, y1, 121))
    return {"surface": surface, "formula": s["formula"], "box": s["box"], "minimum": s["minimum"],
            "grid": (gx, gy, s["f"](gx, gy)), "paths": paths}


# ------------------------------------------------------------------------------------------------
# Inputs and kernels for `numbacnn animate conv` / `pool`

KERNELS = {
    "edge": [[1, -1]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}

_DIGIT = """
..........
...####...
..#....#..
.......#..
......#...
....##....
...#......
..#.......
..######..
..........
"""


def parse_kernel(text: str) -> np.ndarray:
    """A preset name (``KERNELS``) or a literal matrix, rows separated by ';': "1,0,-1;2,0,-2;1,0,-1"."""
    if text in KERNELS:
        return np.array(KERNELS[text], dtype=np.float32)
    rows = [r for r in str(text).split(";")]
    try:
        mat = [[float(v) for v in r.replace(" ", ",").split(",") if v != ""] for r in rows]
    except ValueError:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)} or numbers like '1,0,-1;2,0,-2;1,0,-1', "
                         f"got {text!r}") from None
    if not mat or not mat[0] or any(len(r) != len(mat[0]) for r in mat):
        raise ValueError(f"kernel rows must be non-empty and of equal length (rows separated by ';'), got {text!r}")
    k = np.array(mat, dtype=np.float64)
    big = float(np.finfo(np.float32).max)
    if not np.all(np.isfinite(k)) or np.any(np.abs(k) > big):  # checked before the cast, which would warn
        raise ValueError(f"kernel must hold finite float32 numbers (|v| <= {big:.3g}), got {text!r}")
    return k.astype(np.float32)


def preset_input(name: str) -> np.ndarray:
    """'d2l-edge' (the book's 6x8 image), 'checker' (8x8, 2x2 squares) or 'digit' (a 10x10 hand-drawn 2)."""
    if name == "d2l-edge":
        return book_image()
    if name == "checker":
        i, j = np.indices((8, 8))
        return (((i // 2) + (j // 2)) % 2).astype(np.float32)
    if name == "digit":
        lines = [l for l in _DIGIT.strip("\n").splitlines()]
        return np.array([[1.0 if ch == "#" else 0.0 for ch in l] for l in lines], dtype=np.float32)
    raise ValueError(f"input must be d2l-edge, checker, digit or an image file, got {name!r}")


def parse_size(text) -> tuple[int, int] | None:
    """'12' (longest side) -> (12, 12) bound, '8x12' -> (8, 12) exactly (rows x columns); None stays None."""
    if text is None:
        return None
    s = str(text).lower()
    try:
        if "x" in s:
            h, w = (int(v) for v in s.split("x", 1))
        else:
            h = w = int(s)
    except ValueError:
        raise ValueError(f"size must be N or HxW (e.g. 12 or 8x12), got {text!r}") from None
    if h < 1 or w < 1 or h > 64 or w > 64:
        raise ValueError(f"size must be between 1 and 64 per side (every window is drawn), got {text!r}")
    return h, w


def fit_size(hw, size, exact=False) -> tuple[int, int]:
    """The (h, w) an (H, W) image is resized to: exactly ``size`` when ``exact``, else the largest size within
    ``size`` that keeps the aspect ratio (at least 1x1)."""
    h, w = size
    if exact:
        return h, w
    scale = min(h / hw[0], w / hw[1])
    return max(1, round(hw[0] * scale)), max(1, round(hw[1] * scale))


MAX_IMAGE_PIXELS = 2**25  # ~33.5 megapixels (a 48 MP photo is refused): decoding is checked against this first


class ImageInputError(OSError, ValueError):
    """A file that cannot serve as an input image: not a regular file, not an image Pillow reads, or too large
    (its header says so: the pixels are never decoded). The message names the file. Both an OSError (what
    load_image raised for a bad file before) and a ValueError (the file's content is the problem)."""


_WIDE = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0}


def _grayscale(im) -> "Image.Image":
    """Pillow image -> a grayscale image in [0, 1] as mode "F" (16- and 32-bit integer images scaled by 65535,
    so a 16-bit PNG keeps its shades instead of saturating in mode "L"), or mode "L" for 8-bit images."""
    from PIL import Image

    if im.mode in _WIDE:
        a = np.asarray(im, dtype=np.float64) / _WIDE[im.mode]
        return Image.fromarray(np.clip(a, 0, 1).astype(np.float32))
    if im.mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return Image.fromarray(np.clip(a, 0, 1).astype(np.float32))
    return im.convert("L")


def _open_image(path):
    """The image at ``path``, decoded, after its header's size was checked against MAX_IMAGE_PIXELS."""
    import os
    import stat
    import warnings

    from PIL import Image, UnidentifiedImageError

    shown = str(path)
    mode = os.stat(path).st_mode  # OSError (missing, no permission) goes to the caller
    if stat.S_ISDIR(mode):
        raise ImageInputError(f"{shown!r} is a folder, not an image file")
    if not stat.S_ISREG(mode):
        raise ImageInputError(f"{shown!r} is not a regular file (a device, pipe or socket): give an image file")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check would raise before the size can be read
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(f"{shown!r} is not an image Pillow can read ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with im:
        w, h = im.size
        if w < 1 or h < 1 or w * h > MAX_IMAGE_PIXELS:
            raise ImageInputError(f"{shown!r} is {w}x{h} pixels ({w * h / 1e6:,.1f} megapixels): images above "
                                  f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels are refused before decoding "
                                  "(they are shrunk to at most 64x64 anyway): scale it down first")
        try:
            im.load()
            return _grayscale(im)
        except (SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageInputError(f"{shown!r} is truncated or corrupt ({exc})") from None
        except OSError as exc:
            if exc.errno is not None:  # a read error (EIO, ...), not Pillow's "image file is truncated"
                raise
            raise ImageInputError(f"{shown!r} is truncated or corrupt ({exc})") from None


def load_image(path, size=None, exact=False) -> np.ndarray:
    """An image file as a float32 grayscale array in [0, 1] (Pillow), resized to fit within ``size`` (h, w)
    keeping its aspect ratio, or to exactly ``size`` when ``exact``. Default: longest side 12.

    The file is treated as untrusted: ImageInputError (an OSError and a ValueError, naming the file) for a
    folder, a device, a file that is not an image, a truncated one, or one whose header claims more than
    MAX_IMAGE_PIXELS (checked before any pixel is decoded); a plain OSError when it cannot be read.
    16-bit images keep their shades; an alpha channel is ignored.
    """
    from PIL import Image

    gray = _open_image(path)
    h, w = fit_size((gray.height, gray.width), size if size is not None else (12, 12), exact)
    gray = gray.resize((w, h), Image.Resampling.LANCZOS)
    a = np.asarray(gray, dtype=np.float32)
    a = a / 255.0 if gray.mode == "L" else np.clip(a, 0.0, 1.0)
    return np.round(a, 2).astype(np.float32)
