"""Kills during traced training (issue #14): SIGKILL, SIGTERM and Ctrl-C (SIGINT) sent to a real
`numbacnn train-lenet --trace --save` process, a writer killed mid-write, and a disk that fills up.

After each: the trace loads and every chunk it lists reads back (a consistent prefix of the run), `trace info`
works, a later run on the same --trace is told how to proceed (never "not a numbacnn trace"), and `--resume` with
the same --save and --trace continues both: the finished trace equals the one an uninterrupted run records
(the same steps, the same losses, the same parameters). Runs use a 64-image look-alike data set and take a few
seconds each once the kernels are compiled.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from fuzz_tally import tally

from numbacnn._io import is_temp_name
from numbacnn.cli import main
from numbacnn.trace import load
from numbacnn.train import read_checkpoint
from run_files import make_dataset

BATCHES = 8  # 64 examples in batches of 8
OPTS = ["--batch-size", "8", "--variant", "modern", "--lr", "0.01", "--momentum", "0.9", "--trace-every", "1",
        "--trace-samples", "1", "--no-download"]
HUNG_S = 600  # only a safety net against a hung child: no test relies on how long anything takes


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n_train=64, n_test=16)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    """A folder for the uninterrupted runs, shared by the tests (one per number of epochs)."""
    return tmp_path_factory.mktemp("refs")


def start(dataset, cwd, *args, preexec_fn=None):
    env = {k: v for k, v in os.environ.items() if k != "NUMBACNN_DATA"}
    return subprocess.Popen([sys.executable, "-m", "numbacnn", "train-lenet", "--data-dir", str(dataset), *OPTS,
                             *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec_fn)


def recorded(trace):
    """Steps listed in the trace's manifest so far (0 while there is none)."""
    try:
        return len(json.loads((trace / "manifest.json").read_text())["steps"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_until(proc, cond):
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before the kill (exit {proc.returncode}): {err[-2000:]}")
        assert time.monotonic() - t0 < HUNG_S, "the run seems hung"
        time.sleep(0.005)


def invoke(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def check_prefix(trace):
    """The trace reads back: every listed chunk whole, steps 0..n-1 (every step is recorded), a logged row for
    every recorded step but the last at least (a step's row is written with the next step's chunk, or on close);
    `trace info` works. Returns the Trace."""
    t = load(trace)
    assert t.problems(verify=True) == []
    steps = list(t.steps)
    assert steps == list(range(len(steps)))
    logged = list(t.scalars()["step"])
    assert logged == list(range(len(logged))) and len(logged) >= len(steps) - 1
    r = invoke("trace", "info", trace)
    assert r.exit_code == 0, r.output
    return t


def reference(dataset, folder, epochs):
    """An uninterrupted run of ``epochs`` epochs (in this process): its trace."""
    tr = folder / f"ref-{epochs}.nctrace"
    if not tr.exists():
        r = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--epochs", epochs, "--trace", tr)
        assert r.exit_code == 0, r.output
    return load(tr)


def same_run(t, ref):
    assert list(t.steps) == list(ref.steps)
    a, b = t.scalars(), ref.scalars()
    assert np.array_equal(a["step"], b["step"]) and np.array_equal(a["loss"], b["loss"])
    last = int(ref.steps[-1])
    for name in ref.params:
        assert np.array_equal(t.param(name, "value_after", steps=[last]), ref.param(name, "value_after", steps=[last]))


@pytest.mark.parametrize("sig, extra", [(signal.SIGINT, 3), (signal.SIGTERM, 5), (signal.SIGKILL, 2),
                                        pytest.param(signal.SIGKILL, 6, marks=pytest.mark.soak),
                                        pytest.param(signal.SIGTERM, 1, marks=pytest.mark.soak),
                                        pytest.param(signal.SIGINT, 7, marks=pytest.mark.soak)])
def test_kill_then_read_then_resume_the_same_trace(dataset, refs, tmp_path, sig, extra):
    tally("kills", "kill")
    tr, ck = tmp_path / "run.nctrace", tmp_path / "ck.npz"
    proc = start(dataset, tmp_path, "--epochs", 400, "--trace", tr, "--save", ck)
    wait_until(proc, lambda: ck.exists() and recorded(tr) >= BATCHES + extra)  # a checkpoint, then some steps
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=HUNG_S)
    assert "Traceback" not in err, err
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # Ctrl-C and SIGTERM save and end cleanly
        assert proc.returncode == 130 and "interrupted at epoch" in err and f"--resume {ck}" in err, err
    t = check_prefix(tr)
    assert not t.complete
    progress = read_checkpoint(ck)[2]["progress"]
    done = progress["epoch"] * BATCHES + progress["batch"]
    assert len(t.steps) >= done  # the trace holds at least what the checkpoint saw
    again = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--trace", tr)
    assert again.exit_code == 2 and "already holds a trace" in again.output and "--resume" in again.output
    epochs = progress["epoch"] + 1
    resumed = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--epochs", epochs, "--resume", ck, "--save", ck,
                     "--trace", tr)
    assert resumed.exit_code == 0, resumed.output
    t = check_prefix(tr)
    assert t.complete and t.manifest["resumed_at"] == [done]
    same_run(t, reference(dataset, refs, epochs))
    assert not [f for d, _, fs in os.walk(tr) for f in fs if is_temp_name(f)]


@pytest.mark.parametrize("when", [pytest.param("manifest", marks=pytest.mark.soak), "mid-write"])
def test_a_writer_killed_mid_write_leaves_a_trace_the_next_run_can_replace(dataset, tmp_path, when):
    tally("kills", "kill")
    tr = tmp_path / "run.nctrace"
    proc = start(dataset, tmp_path, "--epochs", 400, "--trace", tr)

    def ready():  # the first manifest written; or a step chunk half written after it
        if not (tr / "manifest.json").exists():
            return False
        return when == "manifest" or any(is_temp_name(f) for f in os.listdir(tr / "steps"))

    wait_until(proc, ready)
    proc.kill()
    proc.communicate(timeout=HUNG_S)
    check_prefix(tr)
    again = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--epochs", 1, "--trace", tr)
    assert again.exit_code == 2 and "already holds a trace" in again.output, again.output
    over = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--epochs", 1, "--trace", tr, "--overwrite")
    assert over.exit_code == 0, over.output
    t = check_prefix(tr)
    assert t.complete and len(t.steps) == BATCHES
    assert not [f for d, _, fs in os.walk(tr) for f in fs if is_temp_name(f)]


def test_a_run_killed_before_its_first_write_leaves_a_folder_the_next_run_takes(dataset, tmp_path):
    tally("kills", "kill")
    tr = tmp_path / "run.nctrace"
    proc = start(dataset, tmp_path, "--epochs", 400, "--trace", tr)
    wait_until(proc, lambda: (tr / "scalars").is_dir())  # folders made, the manifest maybe not yet
    proc.kill()
    proc.communicate(timeout=HUNG_S)
    if (tr / "manifest.json").exists():
        check_prefix(tr)
        pytest.skip("the first manifest was written before the kill (the other tests cover this)")
    r = invoke("train-lenet", "--data-dir", dataset, *OPTS, "--epochs", 1, "--trace", tr)
    assert r.exit_code == 0, r.output
    assert check_prefix(tr).complete


def _small_files():
    """In the child: files larger than 200 KB cannot be written (EFBIG instead of the SIGXFSZ kill): a full disk."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_stops_the_run_with_a_clear_error(dataset, tmp_path):
    tally("kills", "kill")
    tr, ck = tmp_path / "run.nctrace", tmp_path / "ck.npz"
    proc = start(dataset, tmp_path, "--epochs", 2, "--trace", tr, "--save", ck, preexec_fn=_small_files)
    out, err = proc.communicate(timeout=HUNG_S)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err and "Error: training stopped" in err, err
    check_prefix(tr)
    assert not [f for d, _, fs in os.walk(tmp_path) for f in fs if is_temp_name(f)]
