"""Training: 20 SGD steps equal to PyTorch's (golden file and live), the loop, checkpoints and the CLI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import numbacnn as nc
import numbacnn.train as T
from numbacnn import data
from numbacnn.cli import main
from numbacnn.models import lenet
from numbacnn.trace import load
from golden.format import load_cases
from helpers import HAS_TORCH, assert_close
from test_data import make_dataset

ROOT = Path(__file__).resolve().parent.parent


def _golden():
    cases = load_cases("lenet")
    arrays = cases[0][2]
    init = {k[len("init."):]: v for k, v in arrays.items() if k.startswith("init.")}
    return init, arrays["images"], arrays["labels"], cases[1:]


def run_steps(variant, init, images, labels, **sgd):
    """[loss per step] and the final state dict after one SGD step per batch (images uint8, seen / 255)."""
    net = lenet(variant).load_state_dict(init)
    opt = nc.optim.SGD(net.parameters(), **sgd)
    losses = [T.train_step(net, opt, x.astype(np.float32) / 255, y) for x, y in zip(images, labels)]
    return np.array(losses), net.state_dict()


def test_twenty_sgd_steps_match_pytorch_golden():
    init, images, labels, cases = _golden()
    assert len(cases) == 4 and {o["variant"] for _, o, _ in cases} == {"d2l", "modern"}
    assert {o["momentum"] for _, o, _ in cases} == {0.0, 0.9}
    for name, opts, arrays in cases:
        losses, final = run_steps(opts["variant"], init, images, labels, lr=opts["lr"], momentum=opts["momentum"])
        assert_close(losses, arrays["losses"], rtol=1e-4, atol=0, name=f"{name} losses")
        for key, value in final.items():
            assert_close(value, arrays[f"final.{key}"], rtol=1e-4, atol=1e-6, name=f"{name} {key}")


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("variant, sgd", [
    ("d2l", dict(lr=0.5, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    ("modern", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
])
def test_sgd_steps_match_live_pytorch(variant, sgd):
    torch = pytest.importorskip("torch")
    from golden.gen_lenet import torch_lenet

    init = lenet(variant, seed=7).state_dict()
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (6, 8, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (6, 8))
    losses, final = run_steps(variant, init, images, labels, **sgd)
    tnet = torch_lenet(variant)
    tnet.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init.items()})
    topt = torch.optim.SGD(tnet.parameters(), **sgd)
    for step, (x, y) in enumerate(zip(images, labels)):
        loss = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x.astype(np.float32) / 255)),
                                                 torch.from_numpy(y))
        topt.zero_grad()
        loss.backward()
        topt.step()
        assert_close(losses[step], loss.item(), rtol=1e-4, atol=0, name=f"loss at step {step}")
    for key, value in tnet.state_dict().items():
        assert_close(final[key], value.numpy(), rtol=1e-4, atol=1e-6, name=key)


def _separable(n=64, seed=0):
    """Images whose class is a bright square at a class-specific place: easy to learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.2
    for i, c in enumerate(y):
        x[i, 0, 4 + 12 * (c // 2):12 + 12 * (c // 2), 4 + 12 * (c % 2):12 + 12 * (c % 2)] += 0.8
    return x, y


def test_training_learns_and_evaluate_reports_accuracy():
    x, y = _separable()
    net = lenet("modern", seed=0)
    opt = nc.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    first = T.train_step(net, opt, x, y)
    assert isinstance(first, float)
    for _ in range(25):
        last = T.train_step(net, opt, x, y)
    assert last < first / 2
    acc = T.evaluate(net, x, y, batch_size=10)
    assert isinstance(acc, float) and acc > 0.9
    assert T.predict(net, x[:5]).shape == (5,)


def test_nan_loss_raises_before_any_update():
    x, y = _separable(8)
    x[0, 0, 0, 0] = np.nan
    net = lenet(seed=0)
    before = net.state_dict()
    with pytest.raises(T.NonFiniteLossError, match="smaller learning rate"):
        T.train_step(net, nc.optim.SGD(net.parameters(), lr=0.1), x, y)
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_train_step_checks_its_arguments():
    net = lenet(seed=0)
    opt = nc.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="one label per example"):
        T.train_step(net, opt, np.zeros((4, 1, 28, 28), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="out of range"):
        T.train_step(net, opt, np.zeros((2, 1, 28, 28), np.float32), np.array([0, 10]))
    with pytest.raises(ValueError, match="at least one example"):
        T.evaluate(net, np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))


def test_epoch_order_is_deterministic():
    assert np.array_equal(T.epoch_order(10, 3, 1), T.epoch_order(10, 3, 1))
    assert not np.array_equal(T.epoch_order(100, 3, 1), T.epoch_order(100, 3, 2))
    assert T.batch_slices(5, 2) == [(0, 2), (2, 4), (4, 5)]


def test_checkpoint_round_trip(tmp_path):
    x, y = _separable(16)
    net = lenet("modern", seed=0)
    opt = nc.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    T.train_step(net, opt, x, y)
    path = T.save_checkpoint(tmp_path / "ck.npz", net, opt, {"note": "hi"})
    state, ostate, meta = T.read_checkpoint(path)
    assert meta == {"note": "hi"} and list(state) == list(net.state_dict())
    net2 = lenet("modern", seed=1).load_state_dict(state)
    opt2 = nc.optim.SGD(net2.parameters(), lr=0.05, momentum=0.9)
    T.load_optimizer_state(opt2, ostate)
    assert T.train_step(net, opt, x, y) == T.train_step(net2, opt2, x, y)
    assert all(np.array_equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        T.read_checkpoint(tmp_path / "bad.npz")
    with np.load(path) as f:  # plain arrays only: loads without pickle
        assert all(f[k].dtype != object for k in f.files)


# ----------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A 64/16-example dataset in tmp_path/data, and no other data anywhere."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMBACNN_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "MIRRORS", ["http://127.0.0.1:9/nothing/"])
    make_dataset(tmp_path / "data", n_train=64, n_test=16)
    return tmp_path


def invoke(*args):
    result = CliRunner().invoke(main, ["train-lenet", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    return result


def small(tiny, *args):
    return invoke("--data-dir", tiny / "data", "--batch-size", 16, *args)


@pytest.mark.parametrize("args", [
    ["--epochs", "0"], ["--variant", "alexnet"], ["--device", "tpu"], ["--lr", "-1"], ["--batch-size", "0"],
    ["--nesterov"], ["--limit", "x"], ["--bogus"],
])
def test_bad_options_exit_2_without_traceback(tiny, args):
    result = small(tiny, *args)
    assert result.exit_code == 2, result.output
    assert "Error" in result.output


def test_missing_data_is_a_clear_error(tiny):
    result = invoke("--data-dir", tiny / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.output and "apt-get install dataset-fashion-mnist" in result.output
    result = invoke("--no-download")
    assert result.exit_code == 1 and "$NUMBACNN_DATA: not set" in result.output


def test_train_prints_book_style_lines_and_plots(tiny):
    result = small(tiny, "--epochs", 2, "--plot", tiny / "curves.png")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch 2/2:")]
    assert lines and "loss " in lines[0] and "train acc " in lines[0] and "test acc " in lines[0]
    assert "examples/sec on cpu" in lines[0]
    assert (tiny / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tiny.iterdir() if p.name.startswith(".curves")]


def test_printed_accuracies_are_the_test_sets_and_the_epochs(tiny, monkeypatch):
    """"test acc" is evaluate() on the test images after the epoch; "train acc" the epoch's running count."""
    real_evaluate, real_batch, evaluated, correct = T.evaluate, T.train_batch, [], []

    def evaluate(net, x, y, *a, **k):
        evaluated.append((x, y, real_evaluate(net, x, y, *a, **k)))
        return evaluated[-1][2]

    def train_batch(*a, **k):
        loss, right = real_batch(*a, **k)
        correct.append((right, len(a[3])))
        return loss, right

    monkeypatch.setattr(T, "evaluate", evaluate)
    monkeypatch.setattr(T, "train_batch", train_batch)
    result = small(tiny, "--epochs", 2, "--lr", 0.3, "--save", tiny / "run.npz")
    assert result.exit_code == 0, result.output
    ds = data.load_fashion_mnist(tiny / "data", download_missing=False)
    assert len(evaluated) == 2 and len(correct) == 2 * 4  # 64 examples in batches of 16, two epochs
    for epoch, (x, y, acc) in enumerate(evaluated, 1):
        assert np.array_equal(x, ds.test_images) and np.array_equal(y, ds.test_labels)  # the test set
        line = [line for line in result.output.splitlines() if line.startswith(f"epoch {epoch}/2:")][0]
        test_acc = float(line.split("test acc ")[1].split(",")[0])
        train_acc = float(line.split("train acc ")[1].split(",")[0])
        batches = correct[(epoch - 1) * 4:epoch * 4]
        assert test_acc == round(acc, 3), line
        assert train_acc == round(sum(r for r, _ in batches) / sum(n for _, n in batches), 3), line
        assert train_acc != test_acc, line  # the data are chosen so the two differ: a swap shows
    # and the last one is what the saved weights score on the test images, evaluated afresh
    net = lenet("d2l").load_state_dict(_weights(tiny / "run.npz"))
    assert round(real_evaluate(net, ds.test_images, ds.test_labels), 3) == test_acc


def _weights(path):
    return T.read_checkpoint(path)[0]


def _same(a, b):
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_save_resume_and_interrupt_continue_exactly(tiny, monkeypatch):
    opts = ("--variant", "modern", "--lr", 0.05, "--momentum", 0.9)
    straight = small(tiny, *opts, "--epochs", 2, "--save", tiny / "a.npz")
    assert straight.exit_code == 0, straight.output
    # one epoch, then resume to two
    assert small(tiny, *opts, "--epochs", 1, "--save", tiny / "b.npz").exit_code == 0
    resumed = small(tiny, "--epochs", 2, "--resume", tiny / "b.npz", "--save", tiny / "b.npz")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output
    assert _same(_weights(tiny / "a.npz"), _weights(tiny / "b.npz"))
    # Ctrl-C in the middle of the first epoch saves; resuming ends where the straight run did
    real, calls = T.train_batch, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "train_batch", interrupted)
    stopped = small(tiny, *opts, "--epochs", 2, "--save", tiny / "c.npz")
    assert stopped.exit_code == 130 and "interrupted at epoch 1, after batch 2; saved to" in stopped.output
    assert T.read_checkpoint(tiny / "c.npz")[2]["progress"]["batch"] == 2
    monkeypatch.setattr(T, "train_batch", real)
    assert small(tiny, "--epochs", 2, "--resume", tiny / "c.npz", "--save", tiny / "c.npz").exit_code == 0
    assert _same(_weights(tiny / "a.npz"), _weights(tiny / "c.npz"))
    # the model and data order cannot change on resume; reaching the epoch count is a no-op
    clash = small(tiny, "--variant", "d2l", "--resume", tiny / "c.npz")
    assert clash.exit_code == 2 and "--variant d2l differs" in clash.output
    done = small(tiny, "--epochs", 2, "--resume", tiny / "c.npz")
    assert done.exit_code == 0 and "nothing to do" in done.output


def test_sigterm_saves_and_ends_like_ctrl_c(tiny, monkeypatch):
    import signal

    real, calls = T.train_batch, []

    def terminated(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(T, "train_batch", terminated)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    result = small(tiny, "--epochs", 1, "--save", tiny / "t.npz")
    assert result.exit_code == 130 and "saved to" in result.output and "stopping after this batch" in result.output
    assert T.read_checkpoint(tiny / "t.npz")[2]["progress"]["batch"] == 2  # the batch in progress completed
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # the handlers are put back


def test_a_stop_after_the_update_but_before_the_bookkeeping_still_resumes_exactly(tiny, monkeypatch):
    """A second Ctrl-C stops at once, possibly after a batch's update but before its bookkeeping: the checkpoint
    counts that batch, so the resumed run does not apply it twice (it used to)."""
    opts = ("--variant", "modern", "--lr", 0.05, "--momentum", 0.9)
    assert small(tiny, *opts, "--epochs", 1, "--save", tiny / "a.npz").exit_code == 0
    real, calls = T.train_batch, []

    def interrupted_after_the_update(*a, **k):
        calls.append(1)
        out = real(*a, **k)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(T, "train_batch", interrupted_after_the_update)
    stopped = small(tiny, *opts, "--epochs", 1, "--save", tiny / "b.npz")
    assert stopped.exit_code == 130 and T.read_checkpoint(tiny / "b.npz")[2]["progress"]["batch"] == 2
    monkeypatch.setattr(T, "train_batch", real)
    assert small(tiny, "--epochs", 1, "--resume", tiny / "b.npz", "--save", tiny / "b.npz").exit_code == 0
    assert _same(_weights(tiny / "a.npz"), _weights(tiny / "b.npz"))


def test_resume_rejects_a_file_that_is_not_a_checkpoint(tiny):
    (tiny / "x.npz").write_bytes(b"junk")
    result = small(tiny, "--resume", tiny / "x.npz")
    assert result.exit_code == 1 and "x.npz" in result.output


def test_nan_loss_stops_with_the_step_and_a_hint(tiny):
    result = small(tiny, "--variant", "modern", "--lr", "1e6", "--momentum", 0.9, "--batch-size", 8, "--epochs", 3)
    assert result.exit_code == 1
    assert "the loss became nan at epoch 1, batch" in result.output and "try a smaller one, e.g. --lr" in result.output


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="the simulator stands in for a GPU")
def test_target_cuda_without_gpu_is_a_clear_error(tiny):
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a GPU is present")
    result = small(tiny, "--target", "cuda")
    assert result.exit_code == 1 and "needs an NVIDIA GPU" in result.output and "cudasim" in result.output


@pytest.mark.realdata
def test_short_real_data_run():
    if data.locate_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    result = invoke("--limit", 2048, "--epochs", 1, "--batch-size", 64, "--variant", "modern", "--lr", 0.05,
                    "--momentum", 0.9, "--no-download")
    assert result.exit_code == 0, result.output
    line = [line for line in result.output.splitlines() if line.startswith("epoch 1/1:")][0]
    assert float(line.split("test acc ")[1].split(",")[0]) > 0.3, line  # chance is 0.1


def test_example_script_runs():
    args = ["--limit", "256", "--epochs", "1"]
    if data.locate_fashion_mnist() is None:
        args.append("--synthetic")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "lenet.py"), *args], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 1: loss" in proc.stdout and "test acc" in proc.stdout


# ----------------------------------------------------------------------------------------------
# Output paths, the compile message and progress in logs (issue 18)

@pytest.mark.parametrize("args, text", [
    (["--plot", "nodir/c.png"], "--plot nodir/c.png: cannot write 'nodir/c.png': the folder 'nodir' does not exist"),
    (["--plot", "curves.txt"], "--plot curves.txt: matplotlib cannot write .txt images"),
    (["--save", "nodir/x.npz"], "--save nodir/x.npz: cannot write 'nodir/x.npz': the folder 'nodir' does not exist"),
    (["--trace", "nodir/run.nctrace"],
     "--trace nodir/run.nctrace: cannot write 'nodir/run.nctrace': the folder 'nodir' does not exist"),
])
def test_output_paths_are_checked_before_any_work(tiny, monkeypatch, args, text):
    monkeypatch.chdir(tiny)
    result = small(tiny, *args)
    assert result.exit_code == 2 and text in result.output, result.output
    assert "data:" not in result.output  # nothing loaded, nothing trained
    assert not (tiny / "nodir").exists() and not (tiny / "curves.txt").exists()


def test_checkpoints_and_traces_are_kept_unless_overwrite(tiny):
    ck, tr = tiny / "a.npz", tiny / "r.nctrace"
    assert small(tiny, "--epochs", 1, "--save", ck, "--trace", tr, "--trace-every", 2).exit_code == 0
    saved, manifest = ck.read_bytes(), (tr / "manifest.json").read_bytes()
    again = small(tiny, "--save", ck)
    assert again.exit_code == 2 and f"--save {ck}: the file exists: pass --overwrite" in again.output
    again = small(tiny, "--trace", tr)
    assert again.exit_code == 2 and f"--trace {tr}: already holds a trace" in again.output
    assert ck.read_bytes() == saved and (tr / "manifest.json").read_bytes() == manifest  # untouched
    resumed = small(tiny, "--epochs", 2, "--resume", ck, "--save", ck, "--trace", tr)  # continues both in place
    assert resumed.exit_code == 0, resumed.output
    assert T.read_checkpoint(ck)[2]["progress"]["epoch"] == 2
    t = load(tr)
    assert t.complete and list(t.steps) == list(range(0, 8, 2)) and list(t.scalars()["step"]) == list(range(8))
    assert small(tiny, "--epochs", 1, "--save", ck, "--trace", tr, "--overwrite").exit_code == 0
    assert T.read_checkpoint(ck)[2]["progress"]["epoch"] == 1
    assert "--overwrite" in " ".join(invoke("--help").output.split())


def test_save_checkpoint_creates_no_folder(tmp_path):
    net = lenet(seed=0)
    with pytest.raises(FileNotFoundError, match="the folder .*missing does not exist"):
        T.save_checkpoint(tmp_path / "missing" / "ck.npz", net)
    assert not (tmp_path / "missing").exists()


def test_compile_message_and_warm_up_leave_training_unchanged(tiny, monkeypatch):
    from numbacnn.commands import _train_run

    opts = ("--variant", "modern", "--lr", 0.05, "--momentum", 0.9, "--epochs", 2)
    monkeypatch.setattr(_train_run, "ANNOUNCE_AFTER_S", 0.0)  # as if compiling took long
    warm = small(tiny, *opts, "--save", tiny / "warm.npz")
    assert warm.exit_code == 0, warm.output
    assert "compiling kernels, first run only..." in warm.output
    assert "compiling kernels: done in" in warm.output
    monkeypatch.setattr(_train_run, "warm_up", lambda *a: None, raising=False)
    monkeypatch.setattr(T, "warm_up", lambda *a: None)
    cold = small(tiny, *opts, "--save", tiny / "cold.npz")
    assert cold.exit_code == 0, cold.output
    assert _same(_weights(tiny / "warm.npz"), _weights(tiny / "cold.npz"))
    monkeypatch.setattr(_train_run, "ANNOUNCE_AFTER_S", 60.0)
    quick = small(tiny, *opts)
    assert quick.exit_code == 0 and "compiling" not in quick.output  # loading compiled kernels says nothing


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="compiling workers fork")
def test_a_run_that_stops_before_training_stops_its_compiling_workers(tmp_path, monkeypatch):
    from helpers import SlowKernel
    from numbacnn import _precompile

    started = []

    def start(job, workers=None, helping=False):  # a first run: one kernel, compiling for ten minutes
        compiling = _precompile.Compiling(1, [[(SlowKernel(tmp_path / "log", 0, 600), [()])]], 1)
        started.extend(w._pid for w in compiling._workers)
        return compiling

    monkeypatch.setattr(_precompile, "start", start)
    result = CliRunner().invoke(main, ["train-lenet", "--data-dir", str(tmp_path / "no-such-folder")])
    assert result.exit_code == 1, result.output
    assert "compiling kernels, first run only..." in result.output  # said at once, before the data loads
    assert "no-such-folder" in result.output and "Traceback" not in result.output
    assert len(started) == 1
    with pytest.raises(ProcessLookupError):  # the worker was stopped (and reaped) when the command ended
        os.kill(started[0], 0)


def test_progress_in_a_log_prints_plain_lines(tiny, monkeypatch):
    from numbacnn.commands import _train_run

    monkeypatch.setattr(_train_run, "PLAIN_EVERY_S", 0.0)
    result = small(tiny, "--epochs", 1)  # CliRunner's stderr is not a terminal
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch 1/1 batch")]
    assert [line.split(" (")[0] for line in lines] == [f"epoch 1/1 batch {i}/4" for i in (1, 2, 3)]
    assert all("loss " in line and "so far" in line for line in lines)
