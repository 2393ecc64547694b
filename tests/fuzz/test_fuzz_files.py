"""Crafted and damaged files (issue #14): traces, op traces and checkpoints made by hand or broken at random.

Every reader treats its file as untrusted and has one error type: ``TraceError`` for traces, ``CheckpointError``
for checkpoints (both ValueErrors), one line naming the file and the field. A case passes when the reader either
returns exactly the data that was written or raises that error (never MemoryError, TypeError, KeyError, ...),
and the CLI on the same file exits 1 with "Error:" and no traceback. Also here: atomic writes that refuse devices,
FIFOs, sockets and folders, and the temporary files a killed writer leaves.
"""
import errno
import json
import os
import shutil
import socket
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from fuzz_tally import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

from numbacnn._io import NotAFileTargetError, atomic_path, is_temp_name
from numbacnn._npz import read_npz
from numbacnn._paths import OutputPathError, check_output_path
from numbacnn.cli import main
from numbacnn.trace import OpTrace, TraceError, load
from numbacnn.trace.format import PARAM_KINDS, save_npz
from numbacnn.train import CheckpointError, read_checkpoint
from run_files import edit_json, npy_member, npz_with, traced_run, write_npz

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return traced_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def trace(run, tmp_path):
    """A fresh copy of the real trace, to damage."""
    return shutil.copytree(run["trace"], tmp_path / "t.nctrace")


def read_all(t):
    """Everything a reader of the trace can ask for, as {name: array}."""
    out = {}
    for s in t.steps:
        out.update({f"{s}:{k}": v for k, v in t.step_arrays(s).items()})
    for p in t.params[:1]:
        out.update({f"{p}:{k}": t.param(p, k) for k in PARAM_KINDS})
    for layer in t.layers[:1] + t.layers[-1:]:
        out[f"{layer}:y"] = t.feature_maps(layer)
        if t.has_probe:
            out[f"{layer}:probe"] = t.probe_maps(layer)
    out.update({f"scalars:{k}": v for k, v in t.scalars().items()})
    repr(t)
    return out


def equal(x, y):
    return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")


def same(a, b):
    return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)


def one_line(exc, *words):
    msg = str(exc)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def fails(result, code=1, *words):
    assert result.exit_code == code, result.output
    assert "Error:" in result.output, result.output
    for w in words:
        assert w in result.output, (w, result.output)


# ----------------------------------------------------------------------------------------------
# Crafted manifests: load, read everything, and `trace info` each end with TraceError naming the field

class Replace:
    """A change that replaces the whole manifest with ``value`` (JSON text when a str)."""

    def __init__(self, value):
        self.value = value


def _set(key, value):
    def change(m):
        m[key] = value
    return change


MANIFESTS = {
    "scalars outside the folder": (lambda m: m["scalars"].__setitem__(0, "../outside.npz"), "../outside.npz"),
    "scalars absolute": (lambda m: m["scalars"].__setitem__(0, "/etc/passwd"), "/etc/passwd"),
    "scalars dotdot inside": (lambda m: m["scalars"].__setitem__(0, "scalars/../../x.npz"), "scalars"),
    "scalars not a string": (lambda m: m["scalars"].__setitem__(0, 7), "scalars"),
    "dtype garbage": (lambda m: m["params"][0].__setitem__("dtype", "garbage"), "params"),
    "dtype object": (lambda m: m["params"][0].__setitem__("dtype", "object"), "params"),
    "step sizes as strings": (lambda m: m.__setitem__("step_bytes", [str(v) for v in m["step_bytes"]]),
                              "step_bytes"),
    "step sizes short": (lambda m: m["step_bytes"].pop(), "step_bytes"),
    "step sizes negative": (lambda m: m["step_bytes"].__setitem__(0, -1), "step_bytes"),
    "no sampling": (lambda m: m.pop("sampling"), "sampling"),
    "sampling a list": (_set("sampling", []), "sampling"),
    "sampling every 0": (lambda m: m["sampling"].__setitem__("every", 0), "sampling.every"),
    "sampling every text": (lambda m: m["sampling"].__setitem__("every", "1"), "sampling.every"),
    "sampling probe text": (lambda m: m["sampling"].__setitem__("probe", "2"), "sampling"),
    "steps as strings": (lambda m: m.__setitem__("steps", [str(s) for s in m["steps"]]), "steps"),
    "steps decreasing": (lambda m: m["steps"].reverse(), "steps"),
    "steps negative": (lambda m: m["steps"].__setitem__(0, -1), "steps"),
    "steps bools": (lambda m: m.__setitem__("steps", [True] * len(m["steps"])), "steps"),
    "steps floats": (lambda m: m.__setitem__("steps", [float(s) for s in m["steps"]]), "steps"),
    "steps missing": (lambda m: m.pop("steps"), "steps"),
    "steps a dict": (_set("steps", {}), "steps"),
    "huge parameter": (lambda m: m["params"][0].__setitem__("shape", [10 ** 6, 10 ** 6]), "params"),
    "negative shape": (lambda m: m["params"][0].__setitem__("shape", [-1, 5]), "params"),
    "shape text": (lambda m: m["params"][0].__setitem__("shape", "6x1x5x5"), "params"),
    "param not a dict": (lambda m: m["params"].__setitem__(0, "0.weight"), "params"),
    "param twice": (lambda m: m["params"].append(dict(m["params"][0])), "twice"),
    "layers not dicts": (_set("layers", [1, 2]), "layers"),
    "layer index text": (lambda m: m["layers"][0].__setitem__("index", "0"), "layers"),
    "layer without type": (lambda m: m["layers"][0].pop("type"), "layers"),
    "layer twice": (lambda m: m["layers"].append(dict(m["layers"][0])), "twice"),
    "layer shape garbage": (lambda m: m["layers"][0].__setitem__("y", {"shape": "x"}), "layers"),
    "format other": (_set("format", "numpy"), "not a numbacnn trace"),
    "version text": (_set("version", "1"), "version"),
    "version newer": (_set("version", 99), "newer"),
    "complete text": (_set("complete", "yes"), "complete"),
    "hyperparameters a list": (_set("hyperparameters", []), "hyperparameters"),
    "manifest a list": (lambda m: Replace([m]), "not a numbacnn trace"),
    "manifest null": (lambda m: Replace("null"), "not a numbacnn trace"),
    # read when the chunk is: the manifest and the chunk disagree
    "param shape wrong": (lambda m: m["params"][0].__setitem__("shape", [6, 1, 3, 3]), "param/"),
    "param dtype wrong": (lambda m: m["params"][0].__setitem__("dtype", "float64"), "param/"),
    "layer shape wrong": (lambda m: m["layers"][0].__setitem__("y", {"shape": [9, 9, 9], "dtype": "float32"}),
                          "layer/0/y"),
    "extra step": (lambda m: (m["steps"].append(99), m["step_bytes"].append(100)), "step-00000099.npz"),
    "step size off by one": (lambda m: m["step_bytes"].__setitem__(1, m["step_bytes"][1] + 1), "truncated"),
    "scalar size off": (lambda m: m["scalar_bytes"].__setitem__(0, 5), "truncated"),
}


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_crafted_manifest(trace, name):
    tally("files", "crafted file")
    change, word = MANIFESTS[name]
    shutil.copy(trace / "scalars" / "scalars-00000000.npz", trace.parent / "outside.npz")
    path = trace / "manifest.json"
    obj = json.loads(path.read_text())
    new = change(obj)
    new = new.value if isinstance(new, Replace) else obj
    path.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(TraceError) as e:
        read_all(load(trace))
    one_line(e.value, word)
    fails(cli("trace", "info", "--verify", trace), 1, word)


def _symlink_outside(trace):
    os.replace(trace / "scalars" / "scalars-00000000.npz", trace.parent / "outside.npz")
    os.symlink(trace.parent / "outside.npz", trace / "scalars" / "scalars-00000000.npz")
    return "outside the trace folder"


def _step_symlink_outside(trace):
    os.replace(trace / "steps" / "step-00000001.npz", trace.parent / "outside.npz")
    os.symlink(trace.parent / "outside.npz", trace / "steps" / "step-00000001.npz")
    return "outside the trace folder"


def _manifest_folder(trace):
    os.unlink(trace / "manifest.json")
    os.mkdir(trace / "manifest.json")
    return "folder"


def _write(rel, data):
    def damage(trace):
        (trace / rel).write_bytes(data)
        return str(trace.name)
    return damage


def _huge_manifest(trace):
    with open(trace / "manifest.json", "r+b") as f:
        f.truncate(300 << 20)  # sparse: nothing is written, the size alone is refused
    return "larger than"


def _chunk(rel, *words, **raw_or_arrays):
    """Replace chunk ``rel`` with an npz of crafted members and record its true size in the manifest."""
    def damage(trace):
        raw = {k: v for k, v in raw_or_arrays.items() if isinstance(v, bytes)}
        arrays = {k: v for k, v in raw_or_arrays.items() if not isinstance(v, bytes)}
        npz_with(trace / rel, arrays, **raw)
        size = os.path.getsize(trace / rel)

        def fix(m):
            key, names = ("step_bytes", [f"steps/step-{s:08d}.npz" for s in m["steps"]]) if rel.startswith("steps") \
                else ("scalar_bytes", m["scalars"])
            m[key][names.index(rel)] = size
        edit_json(trace / "manifest.json", fix)
        return words[0]
    return damage


W = "param/0.weight/value"
FILES = {
    "scalars symlink outside": _symlink_outside,
    "step symlink outside": _step_symlink_outside,
    "manifest is a folder": _manifest_folder,
    "manifest empty": _write("manifest.json", b""),
    "manifest truncated": lambda t: (t / "manifest.json").write_bytes((t / "manifest.json").read_bytes()[:100])
    and "truncated",
    "manifest not utf-8": _write("manifest.json", b"\xff\xfe{}"),
    "manifest deep nesting": _write("manifest.json", b"[" * 200000 + b"]" * 200000),
    "manifest 300 MB": _huge_manifest,
    "step chunk a folder": lambda t: (os.unlink(t / "steps/step-00000002.npz"), os.mkdir(t / "steps/step-00000002.npz"))
    and "step-00000002",
    "step chunk truncated": lambda t: os.truncate(t / "steps/step-00000003.npz", 1000) or "step-00000003",
    "step chunk same-size junk": lambda t: (t / "steps/step-00000003.npz").write_bytes(
        b"\0" * os.path.getsize(t / "steps/step-00000003.npz")) and "step-00000003",
    "step chunk missing": lambda t: os.unlink(t / "steps/step-00000003.npz") or "missing",
    "npz header claims 10^12 elements": _chunk("steps/step-00000001.npz", "claims",
                                               **{W: npy_member((10 ** 6, 10 ** 6), data=b"\0" * 64)}),
    "npz header claims a negative size": _chunk("steps/step-00000001.npz", "step-00000001",
                                                **{W: npy_member((-5,), data=b"")}),
    "npz pickled object": _chunk("steps/step-00000001.npz", "objects", **{W: np.array([{}], dtype=object)}),
    "npz header not a dict": _chunk("steps/step-00000001.npz", "step-00000001",
                                    **{W: b"\x93NUMPY\x01\x00\x10\x00[1, 2, 3]      \n"}),
    "npz member not .npy": lambda t: write_npz(t / "steps/step-00000001.npz", {"x.txt": b"hello"}) and
    "step-00000001",
    "step array wrong shape": _chunk("steps/step-00000001.npz", W, **{W: np.zeros(3, np.float32)}),
    "step array complex": _chunk("steps/step-00000001.npz", W, **{W: np.zeros((6, 1, 5, 5), np.complex64)}),
    "layer map wrong samples": _chunk("steps/step-00000001.npz", "layer/",
                                      **{"layer/0/x": np.zeros((2, 1, 28, 28), np.float32),
                                         "layer/0/y": np.zeros((3, 6, 28, 28), np.float32)}),
    "layer map text": _chunk("steps/step-00000001.npz", "layer/0/y", **{"layer/0/y": np.array(["a", "b"])}),
    "scalars missing loss": _chunk("scalars/scalars-00000000.npz", "scalars chunk",
                                   step=np.arange(3), acc=np.zeros(3)),
    "scalars 2-D": _chunk("scalars/scalars-00000000.npz", "scalars chunk",
                          step=np.zeros((2, 2), np.int64), loss=np.zeros(2), acc=np.zeros(2)),
    "scalars steps as floats": _chunk("scalars/scalars-00000000.npz", "scalars chunk",
                                      step=np.zeros(3), loss=np.zeros(3), acc=np.zeros(3)),
}


@pytest.mark.parametrize("name", list(FILES))
def test_crafted_trace_file(trace, name):
    tally("files", "crafted file")
    word = FILES[name](trace)
    with pytest.raises(TraceError) as e:
        read_all(load(trace))
    one_line(e.value, word)
    fails(cli("trace", "info", "--verify", trace), 1)


def test_unreadable_manifest_eio(trace, monkeypatch):
    tally("files", "crafted file")
    import numbacnn.trace.format as fmt

    def eio(path, *a, **k):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(fmt, "open", eio, raising=False)
    with pytest.raises(TraceError) as e:
        load(trace)
    one_line(e.value, "manifest", "Input/output error")
    fails(cli("trace", "info", trace), 1, "Input/output error")


def test_unreadable_chunk_eio(trace, monkeypatch):
    tally("files", "crafted file")
    import zipfile

    real = zipfile.ZipFile

    def eio(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(zipfile, "ZipFile", eio)
    t = load(trace)
    with pytest.raises(TraceError) as e:
        t.step_arrays(0)
    one_line(e.value, "step-00000000", "Input/output error")
    monkeypatch.setattr(zipfile, "ZipFile", real)


def test_a_damaged_trace_is_reported_by_info_even_without_verify(trace):
    tally("files", "wrong result")
    os.truncate(trace / "steps" / "step-00000003.npz", 100)
    r = cli("trace", "info", trace)
    fails(r, 1, "step-00000003.npz", "damaged")
    assert "complete" not in r.output.split("state:")[1].split("\n")[0]
    r = cli("trace", "info", "--verify", trace.parent / "nope")
    fails(r, 1, "does not exist")


def test_verify_passes_a_good_trace_and_reads_what_was_written(run):
    tally("files", "wrong result")
    r = cli("trace", "info", "--verify", run["trace"])
    assert r.exit_code == 0 and "verified: every chunk (4 steps" in r.output, r.output
    t = load(run["trace"])
    assert t.problems(verify=True) == [] and list(t.steps) == list(range(4))
    assert list(t.scalars()["step"]) == list(range(4))


# ----------------------------------------------------------------------------------------------
# Op traces

def _op(change=None, arrays=None, header=None):
    def make(src, dst):
        a = read_npz(src)
        h = json.loads(str(a.pop("__header__")))
        if change:
            change(h)
        if arrays:
            arrays(a)
        a["__header__"] = np.array(json.dumps(h) if header is None else header)
        np.savez(dst, **a)
    return make


OPS = {
    "meta a list": (_op(lambda h: h.__setitem__("meta", [])), "meta"),
    "meta null": (_op(lambda h: h.__setitem__("meta", None)), "meta"),
    "op a number": (_op(lambda h: h.__setitem__("op", 3)), "op"),
    "no pos": (_op(arrays=lambda a: a.pop("pos")), "pos"),
    "pos floats": (_op(arrays=lambda a: a.__setitem__("pos", a["pos"].astype(float))), "pos"),
    "pos 1-D": (_op(arrays=lambda a: a.__setitem__("pos", a["pos"][:, 0])), "pos"),
    "rows short": (_op(arrays=lambda a: a.__setitem__("rows", a["rows"][:1])), "rows"),
    "result a scalar": (_op(arrays=lambda a: a.__setitem__("result", np.float32(1))), "result"),
    "kernel_size text": (_op(lambda h: h["meta"].__setitem__("kernel_size", ["a", 2])), "kernel_size"),
    "padding negative": (_op(lambda h: h["meta"].__setitem__("padding", [-1, 0])), "padding"),
    "header not JSON": (_op(header="{not json"), "header"),
    "header deep": (_op(header="[" * 100000), "header"),
    "header a list": (_op(header="[]"), "not a numbacnn trace"),
    "version newer": (_op(lambda h: h.__setitem__("version", 99)), "newer"),
    "model format": (_op(lambda h: h.__setitem__("format", "numbacnn-trace")), "expected"),
    "no header": (lambda src, dst: np.savez(dst, x=np.zeros(3)), "no numbacnn trace header"),
}


@pytest.mark.parametrize("name", list(OPS))
def test_crafted_op_trace(run, tmp_path, name):
    tally("files", "crafted file")
    make, word = OPS[name]
    path = tmp_path / "op.npz"
    make(run["optrace"], path)
    with pytest.raises(TraceError) as e:
        t = load(path)
        len(t), repr(t)
    one_line(e.value, word)
    fails(cli("trace", "info", path), 1, word)
    fails(cli("trace", "export", path, "-o", tmp_path / "out.npz"), 1)
    assert not (tmp_path / "out.npz").exists()


# ----------------------------------------------------------------------------------------------
# Checkpoints (read_checkpoint; train-lenet --resume is in test_fuzz_train_cli.py)

def edit_checkpoint(src, dst, info=None, arrays=None, raw=None):
    """Copy checkpoint ``src`` to ``dst`` with ``info(meta_dict)`` and ``arrays(dict)`` applied."""
    a = read_npz(src)
    meta = json.loads(str(a.pop("__meta__")))
    if info:
        meta = info(meta) or meta
    if arrays:
        arrays(a)
    a["__meta__"] = np.array(json.dumps(meta))
    npz_with(dst, a, **(raw or {}))
    return dst


def _opt(key, value):
    return lambda m: m["optimizer"].__setitem__(key, value)


B = "optim/momentum_buffer/0"
CHECKPOINTS = {
    "n_params 11": (dict(info=_opt("n_params", 11)), "momentum buffers"),
    "n_params 10**9": (dict(info=_opt("n_params", 10 ** 9)), "n_params"),
    "n_params text": (dict(info=_opt("n_params", "10")), "n_params"),
    "n_params negative": (dict(info=_opt("n_params", -1)), "n_params"),
    "n_params bool": (dict(info=_opt("n_params", True)), "n_params"),
    "defaults a list": (dict(info=_opt("defaults", [])), "defaults"),
    "optimizer a list": (dict(info=lambda m: m.__setitem__("optimizer", [1])), "n_params"),
    "meta a list": (dict(info=lambda m: m.__setitem__("meta", [])), "meta"),
    "format other": (dict(info=lambda m: m.__setitem__("format", "x")), "format"),
    "info a list": (dict(info=lambda m: [m]), "format"),
    "momentum (1,)": (dict(arrays=lambda a: a.__setitem__(B, np.zeros(1, np.float32))), "momentum buffer 0"),
    "momentum int64": (dict(arrays=lambda a: a.__setitem__(B, a[B].astype(np.int64))), B),
    "momentum float64": (dict(arrays=lambda a: a.__setitem__(B, a[B].astype(np.float64))), "momentum buffer 0"),
    "momentum NaN": (dict(arrays=lambda a: a[B].__setitem__((0, 0, 0, 0), np.nan)), B),
    "momentum index beyond": (dict(arrays=lambda a: a.__setitem__("optim/momentum_buffer/99", a[B])), "buffer/99"),
    "momentum index text": (dict(arrays=lambda a: a.__setitem__("optim/momentum_buffer/x", a[B])), "buffer/x"),
    "weight int": (dict(arrays=lambda a: a.__setitem__("model/0.weight", a["model/0.weight"].astype(int))),
                   "model/0.weight"),
    "weight complex": (dict(arrays=lambda a: a.__setitem__("model/0.weight", a["model/0.weight"] + 1j)),
                       "model/0.weight"),
    "weight inf": (dict(arrays=lambda a: a["model/0.weight"].__setitem__((0, 0, 0, 0), np.inf)), "model/0.weight"),
    "weight pickled": (dict(arrays=lambda a: a.__setitem__("model/0.weight", np.array([{}], dtype=object))),
                       "objects"),
    "weight claims 10^12": (dict(raw={"model/0.weight": npy_member((10 ** 12,), data=b"\0" * 8)}), "claims"),
}


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_crafted_checkpoint(run, tmp_path, name):
    tally("files", "crafted file")
    from numbacnn.models import lenet
    from numbacnn.optim import SGD
    from numbacnn.train import load_optimizer_state

    kwargs, word = CHECKPOINTS[name]
    path = edit_checkpoint(run["checkpoint"], tmp_path / "ck.npz", **kwargs)
    with pytest.raises(CheckpointError) as e:
        model_state, optim_state, _ = read_checkpoint(path)
        net = lenet("modern", seed=0)
        net.load_state_dict(model_state)
        load_optimizer_state(SGD(net.parameters(), lr=0.1, momentum=0.9), optim_state, path=path)
    one_line(e.value, str(path), word)


@pytest.mark.parametrize("name, data", [("empty", b""), ("junk", b"junk"), ("zip of text", None),
                                        ("no __meta__", "nometa"), ("__meta__ not JSON", "badjson")])
def test_not_a_checkpoint(tmp_path, name, data):
    tally("files", "crafted file")
    path = tmp_path / "ck.npz"
    if data is None:
        write_npz(path, {"a.txt": b"x"})
    elif data == "nometa":
        np.savez(path, x=np.zeros(2))
    elif data == "badjson":
        np.savez(path, __meta__=np.array("{"))
    else:
        path.write_bytes(data)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    one_line(e.value, str(path))


def test_checkpoint_folder_and_missing(tmp_path):
    tally("files", "crafted file", 2)
    for path, word in ((tmp_path, "not a file"), (tmp_path / "nope.npz", "missing")):
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(path)
        one_line(e.value, word)


# ----------------------------------------------------------------------------------------------
# Random damage: a byte flipped or the file cut short; the reader returns what was written or its one error

def _damage(data, where, byte, cut):
    data = bytearray(data)
    if cut:
        return bytes(data[:where % (len(data) + 1)])
    data[where % len(data)] ^= byte or 1
    return bytes(data)


damage = st.tuples(st.integers(0, 1 << 30), st.integers(0, 255), st.booleans())


@fuzz_settings()
@given(d=damage, which=st.sampled_from(["steps/step-00000002.npz", "scalars/scalars-00000000.npz",
                                        "manifest.json"]))
def test_random_damage_to_a_trace(run, tmp_path, d, which):
    tally("files", "crafted file")
    if "original" not in run:
        run["original"] = read_all(load(run["trace"]))
    original = run["original"]
    path = tmp_path / "t.nctrace"
    if not path.exists():
        shutil.copytree(run["trace"], path)
    (path / which).write_bytes(_damage((run["trace"] / which).read_bytes(), *d))
    try:
        got = read_all(load(path))
    except TraceError as exc:
        one_line(exc)
        return
    finally:
        shutil.copy(run["trace"] / which, path / which)
    if which == "manifest.json":  # a flipped hyperparameter still reads; the arrays must be the ones written
        assert all(equal(got[k], original[k]) for k in got if k in original and ":" in k
                   and k.split(":")[0].isdigit())
    else:
        assert same(got, original)


@fuzz_settings()
@given(d=damage)
def test_random_damage_to_a_checkpoint(run, tmp_path, d):
    tally("files", "crafted file")
    model, optim, _ = read_checkpoint(run["checkpoint"])
    path = tmp_path / "ck.npz"
    path.write_bytes(_damage(run["checkpoint"].read_bytes(), *d))
    try:
        m2, o2, _ = read_checkpoint(path)
    except CheckpointError as exc:
        one_line(exc, str(path))
        return
    assert same(m2, model)
    if optim is not None and o2 is not None:
        assert all(np.array_equal(a, b) for a, b in zip(optim["momentum_buffers"], o2["momentum_buffers"])
                   if a is not None and b is not None)


@fuzz_settings()
@given(d=damage)
def test_random_damage_to_an_op_trace(run, tmp_path, d):
    tally("files", "crafted file")
    original = OpTrace.load(run["optrace"])
    path = tmp_path / "op.npz"
    path.write_bytes(_damage(run["optrace"].read_bytes(), *d))
    try:
        t = OpTrace.load(path)
        len(t)
    except TraceError as exc:
        one_line(exc)
        return
    assert t.op == original.op and same(t.arrays, original.arrays)


def test_a_compressed_npz_reads_correctly(run, tmp_path):
    tally("files", "wrong result")
    a = read_npz(run["optrace"])
    np.savez_compressed(tmp_path / "c.npz", **a)
    assert same(read_npz(tmp_path / "c.npz"), a)
    t = OpTrace.load(tmp_path / "c.npz")
    assert same(t.arrays, OpTrace.load(run["optrace"]).arrays)


# ----------------------------------------------------------------------------------------------
# Atomic writes never replace what is not a regular file; temporary files are recognisable

@pytest.fixture
def specials(tmp_path):
    """name -> path of things an output path must never replace."""
    out = {"folder": tmp_path / "folder.npz", "fifo": tmp_path / "fifo.npz"}
    out["folder"].mkdir()
    os.mkfifo(out["fifo"])
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.npz"))
    out["socket"] = tmp_path / "sock.npz"
    if ROOT:  # a character device like /dev/null (1, 3), made here so no real device is ever at risk
        os.mknod(tmp_path / "null.npz", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out["device"] = tmp_path / "null.npz"
    os.symlink(out["fifo"], tmp_path / "link.npz")
    out["link to fifo"] = tmp_path / "link.npz"
    yield out
    sock.close()


def _kind(path):
    return stat.S_IFMT(os.stat(path).st_mode)


def test_atomic_writes_refuse_what_is_not_a_regular_file(specials, tmp_path):
    for name, path in specials.items():
        tally("files", "wrong result", 4)
        kind = _kind(path)
        with pytest.raises(NotAFileTargetError) as e:
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"x")
        one_line(e.value, str(path), "regular file")
        with pytest.raises(OutputPathError):
            check_output_path(path)
        with pytest.raises(ValueError):
            save_npz(path, {"a": np.zeros(2)})
        r = cli("trace", "export", tmp_path / "nope", "-o", path)
        fails(r, 2, str(path))
        assert _kind(path) == kind, name  # still what it was
    assert not [f for f in os.listdir(tmp_path) if is_temp_name(f)]


def test_atomic_write_to_dev_null_is_refused():
    tally("files", "wrong result")
    with pytest.raises(OutputPathError) as e:
        check_output_path("/dev/null")
    one_line(e.value, "/dev/null", "device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_temporary_names_are_recognised():
    tally("files", "crafted file")
    assert is_temp_name(".numbacnn-tmp.manifest.json.k2j3h4.json")
    assert is_temp_name(".manifest.json.abcd_123.json")  # what older versions left
    assert not is_temp_name("manifest.json") and not is_temp_name(".manifest.json")
    assert not is_temp_name("step-00000001.npz")


def test_every_flip_of_an_archive_directory(run, tmp_path):
    """Each bit pattern 0x01 / 0x80 of each byte of the op trace's last 1000 bytes (its zip directory: names,
    sizes, offsets, member count) and each cut there: the arrays written, or TraceError. A damaged directory
    used to hide members (arrays silently missing) until ``numbacnn._npz`` checked the archive's layout."""
    original = OpTrace.load(run["optrace"])
    data = run["optrace"].read_bytes()
    path = tmp_path / "op.npz"
    for i in range(max(0, len(data) - 1000), len(data)):
        for flip in (0x01, 0x80, None):
            tally("files", "crafted file")
            path.write_bytes(data[:i] if flip is None else data[:i] + bytes([data[i] ^ flip]) + data[i + 1:])
            try:
                t = OpTrace.load(path)
            except TraceError:
                continue
            assert t.op == original.op and same(t.arrays, original.arrays), (i, flip)
