"""Real small runs for the files / kills fuzz tests (tests/fuzz/run_files.py): a Fashion-MNIST look-alike written
as IDX files, a traced LeNet run with a checkpoint, an op trace, and the crafted .npz members the readers face.
"""
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from numbacnn.data import FILES, write_idx


def make_dataset(folder, n_train=64, n_test=16, size=28, labels=10, seed=0):
    """The four IDX files of a tiny look-alike data set in ``folder`` (raw, not gzipped); returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, size, size)),
              "train_labels": rng.integers(0, labels, n_train),
              "test_images": rng.integers(0, 256, (n_test, size, size)),
              "test_labels": rng.integers(0, labels, n_test)}
    for key, a in arrays.items():
        write_idx(folder / FILES[key], a)
    return folder


def traced_run(folder):
    """A traced LeNet run (4 steps, every step recorded, 1 sample, a probe of 1) and a checkpoint with momentum;
    returns {"trace": path, "checkpoint": path, "optrace": path}."""
    from numbacnn.models import lenet
    from numbacnn.optim import SGD
    from numbacnn.trace import Tracer, trace_pool2d
    from numbacnn.train import save_checkpoint, train_batch

    folder = Path(folder)
    rng = np.random.default_rng(1)
    x = rng.random((4, 8, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, (4, 8))
    net = lenet("modern", seed=0)
    opt = SGD(net.parameters(), lr=0.05, momentum=0.9)
    with Tracer(net, opt, folder / "run.nctrace", every=1, samples=1, probe=x[0, :1], background=False,
                meta={"batch_size": 8}):
        for xb, yb in zip(x, y):
            train_batch(net, opt, xb, yb)
    save_checkpoint(folder / "ck.npz", net, opt, {"note": "fuzz"})
    trace_pool2d(rng.random((1, 1, 4, 4), dtype=np.float32), "max", 2).save(folder / "pool.npz")
    return {"trace": folder / "run.nctrace", "checkpoint": folder / "ck.npz", "optrace": folder / "pool.npz"}


def npy_member(shape, dtype="<f4", data=b"", fortran=False):
    """The bytes of a .npy file whose header claims ``shape`` of ``dtype``, followed by ``data`` (which may lie)."""
    header = repr({"descr": dtype, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    """A zip of raw ``members`` ({name: bytes}) at ``path``: .npz files np.savez would never write."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def npz_with(path, arrays, **raw):
    """The arrays of an ordinary .npz plus ``raw`` members ({name: .npy bytes}) at ``path``."""
    members = {}
    for k, v in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(v), allow_pickle=True)
        members[k + ".npy"] = buf.getvalue()
    members.update({k + ".npy": v for k, v in raw.items()})
    return write_npz(path, members)


def edit_json(path, change):
    """Rewrite the JSON file at ``path`` with ``change(obj)`` applied (it edits in place or returns a new value)."""
    obj = json.loads(Path(path).read_text())
    new = change(obj)
    Path(path).write_text(json.dumps(obj if new is None else new))


def tree(folder):
    """Every file under ``folder`` (relative names), for "nothing was written" checks."""
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
