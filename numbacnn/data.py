"""Fashion-MNIST (numbacnn.data, D2L 3.5): find, download, verify and read the four IDX files.

``load_fashion_mnist(root=None)`` searches, in order: ``root``, ``$NUMBACNN_DATA``, the user cache
directory (``$XDG_CACHE_HOME/numbacnn/fashion-mnist``, default ``~/.cache/...``) and
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package). Each file may be
gzipped (``*.gz``) or raw IDX. When no place holds the data it downloads the four files from the
dataset's official location into the cache, reporting progress (a line per file on stderr, or any
``progress(name, done, total)`` callback: the CLI passes a progress bar), and checks their published MD5 sums.

Images come back as float32 (N, 1, 28, 28) scaled to [0, 1] (torchvision's ``ToTensor``), labels as int64 (N,).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._io import atomic_path

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# The official location (github.com/zalandoresearch/fashion-mnist), tried in order.
MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]
# MD5 of the published .gz files (the sums torchvision checks).
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MAX_IDX_BYTES = 256 << 20  # the largest IDX file read (Fashion-MNIST's training images are 47 MB)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
HOW_TO_GET = (
    "To get the data: let numbacnn download it (needs internet access to "
    f"{MIRRORS[0]}), or install Debian's package (`sudo apt-get install dataset-fashion-mnist`), or "
    f"download the four files {', '.join(n + '.gz' for n in FILES.values())} from "
    "https://github.com/zalandoresearch/fashion-mnist into a directory and pass it with --data-dir DIR "
    "(or set NUMBACNN_DATA=DIR)."
)


class DataNotFoundError(FileNotFoundError):
    """No place holds the Fashion-MNIST files and none could be downloaded; the message lists the places."""


class DataFormatError(ValueError):
    """A data file is corrupt, truncated or not the IDX file it should be; the message names the file."""


class FashionMNIST(NamedTuple):
    train_images: np.ndarray  # (60000, 1, 28, 28) float32 in [0, 1]
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray   # (10000, 1, 28, 28)
    test_labels: np.ndarray   # (10000,)


def cache_dir() -> Path:
    """The user cache directory for the dataset: $XDG_CACHE_HOME/numbacnn/fashion-mnist (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numbacnn" / "fashion-mnist"


def search_path(root=None) -> list[tuple[str, Path | None]]:
    """[(label, directory or None)] in search order; None marks an unset $NUMBACNN_DATA."""
    places = []
    if root is not None:
        places.append(("data directory", Path(root).expanduser()))
    env = os.environ.get("NUMBACNN_DATA")
    places.append(("$NUMBACNN_DATA", Path(env).expanduser() if env else None))
    places.append(("user cache", cache_dir()))
    places.append(("system datasets", SYSTEM_DIR))
    return places


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        p = directory / name
        if p.is_file():
            return p
    return None


def find_files(directory) -> dict[str, Path] | None:
    """{key: path} when ``directory`` holds all four files (gzipped or raw), else None."""
    directory = Path(directory)
    found = {key: _find(directory, stem) for key, stem in FILES.items()}
    return found if all(found.values()) else None


# ----------------------------------------------------------------------------------------------
# Reading IDX files


def read_idx(path, expected_ndim: int) -> np.ndarray:
    """An IDX file (gzip or raw) of unsigned bytes as a uint8 array; DataFormatError names the file when it is bad.

    Layout: magic 0x0000_08_<ndim>, ndim big-endian uint32 sizes, then the bytes.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise DataFormatError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read(MAX_IDX_BYTES + 1)  # a gzip bomb stops here
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"{path}: cannot read it ({exc}); the file is corrupt or truncated. "
                              f"Delete it and try again (a fresh copy will be downloaded if needed).") from exc
    if len(raw) > MAX_IDX_BYTES:
        raise DataFormatError(f"{path}: holds more than {MAX_IDX_BYTES >> 20} MB of data, not a Fashion-MNIST file")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expected_ndim:
        raise DataFormatError(f"{path}: not an IDX file of {expected_ndim}-D unsigned bytes "
                              f"(header {raw[:4].hex() or 'empty'}, expected 000008{expected_ndim:02x})")
    header = 4 + 4 * expected_ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated header ({len(raw)} bytes)")
    shape = struct.unpack(f">{expected_ndim}I", raw[4:header])
    need = int(np.prod(shape, dtype=object))
    if len(raw) - header != need:
        raise DataFormatError(f"{path}: holds {len(raw) - header} data bytes but its header {shape} needs {need}; "
                              f"the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_dir(directory) -> FashionMNIST:
    """Read and check the four files of ``directory`` (never a half-loaded dataset)."""
    paths = find_files(directory)
    if paths is None:
        raise DataNotFoundError(f"{directory} does not hold the four Fashion-MNIST files")
    arrays = {}
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], 3)
        labels = read_idx(paths[f"{split}_labels"], 1)
        if images.shape[1:] != (28, 28):
            raise DataFormatError(f"{paths[f'{split}_images']}: images are {images.shape[1]}x{images.shape[2]}, "
                                  f"Fashion-MNIST's (and LeNet's) are 28x28")
        if images.shape[0] == 0:
            raise DataFormatError(f"{paths[f'{split}_images']} holds no images")
        if images.shape[0] != labels.shape[0]:
            raise DataFormatError(f"{paths[f'{split}_images']} has {images.shape[0]} images but "
                                  f"{paths[f'{split}_labels']} has {labels.shape[0]} labels")
        if labels.size and labels.max() >= len(CLASSES):
            raise DataFormatError(f"{paths[f'{split}_labels']}: label {labels.max()} is out of range 0..9")
        arrays[f"{split}_images"] = (images.astype(np.float32) / 255.0)[:, None]
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return FashionMNIST(**arrays)


# ----------------------------------------------------------------------------------------------
# Download


def _md5(path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def print_progress(name: str, done: int, total: int | None) -> None:
    """The default download progress: one line on stderr as each file starts."""
    if done == 0:
        print(f"downloading {name}", file=sys.stderr, flush=True)


def _progress_callback(progress):
    """``progress``: True (print_progress), False or None (silent), or a callable(name, done, total)."""
    if progress is True:
        return print_progress
    return progress or None


def download_file(url: str, dest, md5: str | None = None, progress=True, timeout: float = 30) -> Path:
    """Fetch ``url`` into ``dest`` through a temporary file; verify ``md5``; nothing is left behind on failure.

    ``progress(dest.name, done, total)`` is called with done=0 as the transfer starts and after each chunk
    (bytes so far; total None when the server does not say); True prints a line, False is silent.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    report = _progress_callback(progress)
    with atomic_path(dest, suffix=".part") as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            if report is not None:
                report(dest.name, done, total)
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                done += len(chunk)
                if report is not None:
                    report(dest.name, done, total)
        if md5 is not None:
            got = _md5(tmp)
            if got != md5:
                raise DataFormatError(f"{url}: downloaded file has MD5 {got}, expected {md5} (corrupt download)")
    return dest


def download(directory=None, progress=True, mirrors=None) -> Path:
    """Download the four .gz files into ``directory`` (the cache by default), checking their MD5 sums.

    ``progress``: see ``download_file``."""
    directory = Path(directory) if directory is not None else cache_dir()
    mirrors = MIRRORS if mirrors is None else mirrors
    for stem in FILES.values():
        name = stem + ".gz"
        if (directory / name).is_file() and _md5(directory / name) == MD5[name]:
            continue
        errors = []
        for base in mirrors:
            try:
                download_file(base + name, directory / name, MD5[name], progress)
                break
            except (OSError, DataFormatError) as exc:  # URLError and timeouts are OSErrors
                errors.append(f"{base + name}: {exc}")
        else:
            raise DataNotFoundError("; ".join(errors))
    return directory


# ----------------------------------------------------------------------------------------------
# Public entry point


def locate_fashion_mnist(root=None) -> Path | None:
    """The first directory in the search order holding all four files, or None."""
    for _, directory in search_path(root):
        if directory is not None and find_files(directory):
            return directory
    return None


def _describe(directory) -> str:
    if not directory.is_dir():
        return "does not exist"
    return "holds the four files" if find_files(directory) else "does not hold the four files"


def _not_found_message(root, download_error=None) -> str:
    lines = ["Fashion-MNIST was not found. Places searched, in order:"]
    for label, directory in search_path(root):
        if directory is None:
            lines.append(f"  - {label}: not set")
        else:
            lines.append(f"  - {label}: {directory} ({_describe(directory)})")
    if download_error:
        lines.append(f"Downloading into {cache_dir()} failed: {download_error}")
    lines.append(HOW_TO_GET)
    return "\n".join(lines)


def load_fashion_mnist(root=None, *, download_missing: bool = True, progress=True) -> FashionMNIST:
    """Fashion-MNIST as float32 images (N, 1, 28, 28) in [0, 1] and int64 labels (N,), train then test.

    ``root`` (the CLI's ``--data-dir``) is searched first; an explicit ``root`` that does not exist is an
    error (a typo should not silently fall back). See the module docstring for the search order.
    ``progress`` reports a download: True prints a line per file, False is silent, or a callable
    ``progress(name, done_bytes, total_bytes_or_None)``.
    Raises DataNotFoundError (naming every place searched and how to get the data) or DataFormatError
    (naming the bad file).
    """
    if root is not None and not Path(root).expanduser().is_dir():
        elsewhere = locate_fashion_mnist()
        hint = (f" Fashion-MNIST is in {elsewhere}: leave out the data directory (--data-dir) to use it."
                if elsewhere else "\n" + _not_found_message(root))
        raise DataNotFoundError(f"data directory {root} does not exist.{hint}")
    directory = locate_fashion_mnist(root)
    if directory is None:
        if not download_missing:
            raise DataNotFoundError(_not_found_message(root))
        try:
            directory = download(progress=progress)
        except (OSError, DataFormatError) as exc:
            raise DataNotFoundError(_not_found_message(root, exc)) from None
    return read_dir(directory)


def write_idx(path, array) -> Path:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in .gz); for tests and small custom sets."""
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path
