"""CLI misuse fuzz for `numbacnn train-lenet` and `numbacnn trace` (issue #14): a table of hostile invocations.

Wrong option values (nan, inf, negative, text, huge), data folders holding crafted IDX files (8x8 images, no images,
labels out of range, truncated, lying headers), output paths that are folders, devices, FIFOs, missing folders or
/proc, existing checkpoints and traces, and --resume checkpoints made by hand. Every case must end with the exit
code it should have (2: usage, 1: failure), "Error:" and the option or file named, no traceback, no file written
in the working folder, and every special file left as it was.
"""
import gzip
import json
import os
import shutil
import stat
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from fuzz_tally import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

from numbacnn import data
from numbacnn._npz import read_npz
from numbacnn.cli import main
from numbacnn.data import FILES
from run_files import make_dataset, npz_with, tree

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HUGE = "9" * 40


def _idx(path, magic, dims, payload=b""):
    path.write_bytes(bytes(magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def _edit_ck(src, dst, change):
    a = read_npz(src)
    meta = json.loads(str(a.pop("__meta__")))
    change(meta, a)
    a["__meta__"] = np.array(json.dumps(meta))
    npz_with(dst, a)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data sets, a checkpoint and trace of a real run, crafted checkpoints and special files; name -> path."""
    root = tmp_path_factory.mktemp("world")
    w = {"root": root}
    w["ok"] = make_dataset(root / "ok", n_train=16, n_test=8)
    w["8x8"] = make_dataset(root / "8x8", size=8)
    w["0train"] = make_dataset(root / "0train", n_train=0)
    w["0test"] = make_dataset(root / "0test", n_test=0)
    w["label10"] = make_dataset(root / "label10", labels=11, n_train=200)
    for name in ("trunc", "gzjunk", "huge", "magic", "mismatch", "fifo"):
        w[name] = shutil.copytree(w["ok"], root / name)
    images = FILES["train_images"]
    (w["trunc"] / images).write_bytes((w["ok"] / images).read_bytes()[:500])
    (w["gzjunk"] / images).write_bytes(gzip.compress(b"x" * 100)[:30])
    _idx(w["huge"] / images, [0, 0, 8, 3], (10 ** 9, 28, 28), b"\0" * 100)
    _idx(w["magic"] / images, [0, 0, 13, 3], (1, 28, 28), b"\0" * 784)
    _idx(w["mismatch"] / FILES["train_labels"], [0, 0, 8, 1], (3,), b"\0\1\2")
    os.unlink(w["fifo"] / images)
    os.mkfifo(w["fifo"] / images)  # not a regular file: the data set is incomplete (never read, never blocks)
    for ext in ("npz", "png"):
        w[f"fifo.{ext}"] = root / f"fifo.{ext}"
        os.mkfifo(w[f"fifo.{ext}"])
        if ROOT:  # a character device like /dev/null (1, 3), made here so no real device is ever at risk
            os.mknod(root / f"node.{ext}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            w[f"node.{ext}"] = root / f"node.{ext}"
        else:
            w[f"node.{ext}"] = w[f"fifo.{ext}"]
    w["folder.npz"] = root / "folder.npz"
    w["folder.npz"].mkdir()
    w["junk.npz"] = root / "junk.npz"
    w["junk.npz"].write_bytes(b"junk")
    w["other"] = root / "other"
    w["other"].mkdir()
    (w["other"] / "notes.txt").write_text("mine")
    ck, tr = root / "ck.npz", root / "run.nctrace"
    r = CliRunner().invoke(main, ["train-lenet", "--data-dir", str(w["ok"]), "--batch-size", "8", "--epochs", "1",
                                  "--momentum", "0.9", "--lr", "0.01", "--variant", "modern", "--save", str(ck),
                                  "--trace", str(tr), "--trace-every", "1", "--trace-samples", "1"])
    assert r.exit_code == 0, r.output
    w["ck"], w["trace"] = ck, tr
    w["steps-file"] = shutil.copytree(tr, root / "steps-file.nctrace")
    shutil.rmtree(w["steps-file"] / "steps")
    (w["steps-file"] / "steps").write_text("not a folder")
    w["damaged"] = shutil.copytree(tr, root / "damaged.nctrace")
    os.truncate(w["damaged"] / "steps" / "step-00000001.npz", 50)
    B = "optim/momentum_buffer/0"
    crafted = {
        "no progress": lambda m, a: m["meta"].pop("progress"),
        "no config": lambda m, a: m["meta"].pop("config"),
        "progress a list": lambda m, a: m["meta"].__setitem__("progress", []),
        "lr text": lambda m, a: m["meta"]["config"].__setitem__("lr", "0.1"),
        "lr nan": lambda m, a: m["meta"]["config"].__setitem__("lr", float("nan")),
        "seed -1": lambda m, a: m["meta"]["config"].__setitem__("seed", -1),
        "variant alexnet": lambda m, a: m["meta"]["config"].__setitem__("variant", "alexnet"),
        "batch_size 0": lambda m, a: m["meta"]["config"].__setitem__("batch_size", 0),
        "epoch -1": lambda m, a: m["meta"]["progress"].__setitem__("epoch", -1),
        "batch 10**9": lambda m, a: m["meta"]["progress"].__setitem__("batch", 10 ** 9),
        "history uneven": lambda m, a: m["meta"]["history"]["train_loss"].append(1.0),
        "history text": lambda m, a: m["meta"]["history"].__setitem__("test_acc", "high"),
        "n_params 11": lambda m, a: m["optimizer"].__setitem__("n_params", 11),
        "n_params 10**9": lambda m, a: m["optimizer"].__setitem__("n_params", 10 ** 9),
        "momentum (1,)": lambda m, a: a.__setitem__(B, np.zeros(1, np.float32)),
        "momentum int64": lambda m, a: a.__setitem__(B, a[B].astype(np.int64)),
        "weight wrong shape": lambda m, a: a.__setitem__("model/0.weight", np.zeros((2, 2), np.float32)),
        "weight missing": lambda m, a: a.pop("model/0.weight"),
        "weight nan": lambda m, a: a["model/0.weight"].__setitem__((0, 0, 0, 0), np.nan),
    }
    for name, change in crafted.items():
        w[f"ck:{name}"] = root / f"ck-{name.replace(' ', '_').replace('*', '')}.npz"
        _edit_ck(ck, w[f"ck:{name}"], change)
    return w


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run in an empty folder, with no data found anywhere but --data-dir and no download."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    monkeypatch.delenv("NUMBACNN_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / ".system")
    monkeypatch.setattr(data, "MIRRORS", ["http://127.0.0.1:9/nothing/"])
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _kinds(w):
    return {k: stat.S_IFMT(os.lstat(v).st_mode) for k, v in w.items() if k.endswith((".npz", ".png")) and ":" not in k}


def run_case(world, isolated, args, code, words):
    before = _kinds(world)
    trace_before = tree(world["trace"])
    ck_before = world["ck"].read_bytes()
    args = [str(world[a[1:]]) if a.startswith("@") else a for a in args]
    r = CliRunner().invoke(main, args)
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == code, (args, r.output)
    assert "Error:" in r.output, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
    for w in words:
        assert w in r.output, (w, r.output)
    assert len(lines) == 1, r.output
    assert tree(isolated) == [], tree(isolated)  # nothing written
    assert _kinds(world) == before
    assert tree(world["trace"]) == trace_before and world["ck"].read_bytes() == ck_before
    return r


TRAIN = ["train-lenet", "--data-dir", "@ok", "--batch-size", "8", "--epochs", "1"]
OPTIONS = [
    (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "-inf"], "--lr"), (["--lr", "-1"], "--lr"),
    (["--lr", "abc"], "--lr"), (["--lr", "1e400"], "--lr"), (["--lr", ""], "--lr"),
    (["--momentum", "nan"], "--momentum"), (["--momentum", "-0.5"], "--momentum"), (["--momentum", "inf"], "--momentum"),
    (["--dampening", "nan"], "--dampening"), (["--dampening", "inf"], "--dampening"),
    (["--dampening", "-inf"], "--dampening"),
    (["--weight-decay", "nan"], "--weight-decay"), (["--weight-decay", "-1"], "--weight-decay"),
    (["--weight-decay", "inf"], "--weight-decay"),
    (["--seed", "-1"], "--seed"), (["--seed", "abc"], "--seed"), (["--seed", "1.5"], "--seed"),
    (["--seed", str(2 ** 64)], "--seed"), (["--seed", HUGE], "--seed"),
    (["--epochs", "0"], "--epochs"), (["--epochs", "-1"], "--epochs"), (["--epochs", "x"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-1"], "--batch-size"),
    (["--batch-size", "1.5"], "--batch-size"), (["--limit", "0"], "--limit"), (["--limit", "-3"], "--limit"),
    (["--trace-every", "0"], "--trace-every"), (["--trace-samples", "-1"], "--trace-samples"),
    (["--variant", "alexnet"], "--variant"), (["--init", "he"], "--init"), (["--device", "tpu"], "tpu"),
    (["--nesterov"], "Nesterov"), (["--nesterov", "--momentum", "0.9", "--dampening", "0.5"], "Nesterov"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize("args, word", OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_options(world, isolated, args, word):
    tally("cli", "raw error")
    run_case(world, isolated, TRAIN + args, 2, [word])


PATHS = [
    (["--plot", "curves.txt"], 2, ["--plot curves.txt", ".txt"]),
    (["--plot", "nodir/c.png"], 2, ["--plot nodir/c.png", "does not exist"]),
    (["--plot", "@folder.npz"], 2, ["--plot", "folder"]),
    (["--plot", "@node.png"], 2, ["--plot", "regular file"]),
    (["--plot", "@fifo.png"], 2, ["--plot", "regular file"]),
    (["--plot", "/proc/c.png"], 2, ["--plot /proc/c.png"]),
    (["--save", "@folder.npz"], 2, ["--save", "folder"]),
    (["--save", "@node.npz"], 2, ["--save", "regular file"]),
    (["--save", "@node.npz", "--overwrite"], 2, ["--save", "regular file"]),
    (["--save", "/dev/null", "--overwrite"], 2, ["--save /dev/null", "device"]),
    (["--save", "@fifo.npz", "--overwrite"], 2, ["--save", "FIFO"]),
    (["--save", "nodir/x.npz"], 2, ["--save nodir/x.npz", "does not exist"]),
    (["--save", "@ck"], 2, ["the file exists: pass --overwrite"]),
    (["--trace", "/proc/x"], 2, ["--trace /proc/x"]),
    (["--trace", "/dev/null"], 2, ["--trace /dev/null", "not a folder"]),
    (["--trace", "@fifo.npz"], 2, ["--trace", "not a folder"]),
    (["--trace", "@junk.npz"], 2, ["--trace", "not a folder"]),
    (["--trace", "@other"], 2, ["--trace", "not a numbacnn trace"]),
    (["--trace", "@trace"], 2, ["already holds a trace", "--overwrite", "--resume"]),
    (["--trace", "nodir/run.nctrace"], 2, ["--trace nodir/run.nctrace", "does not exist"]),
    (["--save", "x.png", "--plot", "x.png"], 2, ["--save x.png", "also the --plot"]),
    (["--save", "run.nctrace", "--trace", "./run.nctrace"], 2, ["--trace ./run.nctrace", "also the --save"]),
    (["--data-dir", "@junk.npz"], 2, ["--data-dir"]),
    (["--data-dir", "nowhere", "--no-download"], 1, ["nowhere does not exist"]),
    (["--data-dir", "@other", "--no-download"], 1, ["Fashion-MNIST was not found"]),
    (["--data-dir", "@fifo", "--no-download"], 1, ["Fashion-MNIST was not found"]),
    (["--data-dir", "@8x8"], 1, ["8x8", "28x28"]),
    (["--data-dir", "@0train"], 1, ["holds no images"]),
    (["--data-dir", "@0test"], 1, ["holds no images"]),
    (["--data-dir", "@label10"], 1, ["out of range 0..9"]),
    (["--data-dir", "@trunc"], 1, ["train-images", "truncated"]),
    (["--data-dir", "@gzjunk"], 1, ["gzjunk/train-images"]),
    (["--data-dir", "@huge"], 1, ["train-images"]),
    (["--data-dir", "@magic"], 1, ["train-images", "not an IDX file"]),
    (["--data-dir", "@mismatch"], 1, ["labels"]),
    (["--resume", "nope.npz"], 2, ["--resume"]),
    (["--resume", "@folder.npz"], 2, ["--resume"]),
    (["--resume", "@junk.npz"], 1, ["--resume", "junk.npz"]),
    (["--resume", "@fifo.npz"], 1, ["--resume", "not a file"]),
    (["--resume", "@ck", "--seed", "3"], 2, ["--seed 3 differs"]),
    (["--resume", "@ck", "--trace", "@damaged"], 2, ["--trace", "damaged", "--overwrite"]),
    (["--resume", "@ck", "--trace", "@steps-file"], 2, ["--trace", "not a numbacnn trace"]),
    (["--resume", "@ck", "--trace", "@trace", "--trace-every", "3"], 2, ["another run", "sampling every"]),
    (["--resume", "@ck", "--trace", "@trace", "--trace-samples", "2"], 2, ["another run"]),
]


@pytest.mark.parametrize("args, code, words", PATHS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_paths_and_data(world, isolated, args, code, words):
    tally("cli", "raw error")
    run_case(world, isolated, TRAIN + args, code, words)


CHECKPOINTS = {"no progress": "progress", "no config": "config", "progress a list": "progress",
               "lr text": "config.lr", "lr nan": "config.lr", "seed -1": "config.seed",
               "variant alexnet": "config.variant", "batch_size 0": "config.batch_size",
               "epoch -1": "progress.epoch", "batch 10**9": "batch 1000000000", "history uneven": "history",
               "history text": "history.test_acc", "n_params 11": "11 momentum buffers",
               "n_params 10**9": "n_params", "momentum (1,)": "momentum buffer 0 has shape (1,)",
               "momentum int64": "optim/momentum_buffer/0", "weight wrong shape": "0.weight",
               "weight missing": "missing", "weight nan": "model/0.weight"}


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_crafted_resume_checkpoints(world, isolated, name):
    tally("files", "crafted file")
    run_case(world, isolated, TRAIN + ["--resume", f"@ck:{name}"], 1, ["--resume", CHECKPOINTS[name]])


TRACE = [
    (["trace", "info", "nope"], 1, ["does not exist"]),
    (["trace", "info", "/dev/null"], 1, ["/dev/null", "not a file"]),
    (["trace", "info", "@fifo.npz"], 1, ["not a file"]),
    (["trace", "info", "@other"], 1, ["not a numbacnn trace"]),
    (["trace", "info", "@junk.npz"], 1, ["not a trace file"]),
    (["trace", "info", "@ck"], 1, ["no numbacnn trace header"]),
    (["trace", "info", "@damaged"], 1, ["step-00000001.npz", "damaged"]),
    (["trace", "info"], 2, ["FILE"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "/dev/null"], 2, ["/dev/null", "use .npz"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "@node.npz"], 2, ["regular file"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "@fifo.npz"], 2, ["FIFO"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "@folder.npz"], 2, ["folder"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "x.txt"], 2, [".txt"]),
    (["trace", "export", "@trace", "--step", "0", "-o", "nodir/x.npz"], 2, ["does not exist"]),
    (["trace", "export", "@trace", "--step", "999", "-o", "x.npz"], 2, ["step 999 was not recorded"]),
    (["trace", "export", "@trace", "--step", "-1", "-o", "x.npz"], 2, ["step -1 was not recorded"]),
    (["trace", "export", "@trace", "--step", "abc", "-o", "x.npz"], 2, ["--step"]),
    (["trace", "export", "@trace", "--step", HUGE, "-o", "x.npz"], 2, ["was not recorded"]),
    (["trace", "export", "@trace", "--step", "0", "--layer", "99", "-o", "x.npz"], 2, ["layer '99'"]),
    (["trace", "export", "@trace", "--param", "nope", "-o", "x.npz"], 2, ["parameter 'nope'"]),
    (["trace", "export", "@trace", "--param", "0.bias", "--step", "0", "-o", "x.npz"], 2, ["--param"]),
    (["trace", "export", "@trace", "--step", "0"], 2, ["-o"]),
    (["trace", "export", "@damaged", "--step", "1", "-o", "x.npz"], 1, ["step-00000001.npz"]),
    (["trace", "export", "nope", "--step", "0", "-o", "x.npz"], 1, ["does not exist"]),
]


@pytest.mark.parametrize("args, code, words", TRACE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_trace_command_misuse(world, isolated, args, code, words):
    tally("cli", "raw error")
    run_case(world, isolated, args, code, words)


def test_trace_folder_left_by_a_run_killed_before_its_first_write_is_reused(world, isolated):
    tally("cli", "wrong result")
    tr = isolated / "run.nctrace"
    (tr / "steps").mkdir(parents=True)
    (tr / "scalars").mkdir()
    (tr / ".numbacnn-tmp.manifest.json.x1y2z3.json").write_text("{")
    (tr / "steps" / ".step-00000000.npz.abcd1234.npz").write_bytes(b"half")
    r = CliRunner().invoke(main, ["train-lenet", "--data-dir", str(world["ok"]), "--batch-size", "8",
                                  "--epochs", "1", "--trace", str(tr)])
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tr)) == ["manifest.json", "scalars", "steps"]
    assert all(not f.startswith(".") for f in os.listdir(tr / "steps"))


NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                    st.text(max_size=12), st.sampled_from(["nan", "-nan", "inf", "+inf", "1e400", "0x10", "1_0",
                                                           " 1", "", "-0", "1e-400", HUGE, "-" + HUGE]))
NUMERIC = ["--lr", "--momentum", "--dampening", "--weight-decay", "--seed", "--epochs", "--batch-size", "--limit",
           "--trace-every", "--trace-samples"]


@fuzz_settings()
@given(option=st.sampled_from(NUMERIC), value=NUMBERS)
def test_random_option_values(world, isolated, option, value):
    """Any text for a numeric option: a usage error naming the option (exit 2), or accepted; an accepted value
    then meets the empty data set (exit 1), so no training runs."""
    tally("cli", "raw error")
    if "\0" in value:
        value = value.replace("\0", "")
    r = CliRunner().invoke(main, ["train-lenet", "--data-dir", str(world["0train"]), "--no-download", option, value])
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert r.exit_code in (1, 2) and "Error:" in r.output, r.output
    if r.exit_code == 2:
        assert option in r.output or "Nesterov" in r.output, r.output
    else:
        assert "holds no images" in r.output, r.output
    assert tree(isolated) == []
