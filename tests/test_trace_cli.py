"""`numbacnn trace info|export`: readable summaries, plain .npz exports, clear errors without tracebacks."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import small_traced_run
from numbacnn.cli import main
from numbacnn.data import locate_fashion_mnist
from numbacnn.trace import load, trace_conv2d


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    return small_traced_run(tmp_path_factory.mktemp("cli") / "run.nctrace")


def invoke(*args):
    return CliRunner().invoke(main, ["trace", *map(str, args)])


def test_info_model_trace(trace_path):
    r = invoke("info", trace_path)
    assert r.exit_code == 0, r.output
    for text in ("3 recorded (0..4; every 2 steps", "complete", "lr=0.05", "batch_size=4", "Conv2d", "1x6x6",
                 "2x4x4", "3.weight", "size on disk", "5 steps logged"):
        assert text in r.output, text


def test_info_op_trace(tmp_path):
    t = trace_conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))
    t.save(tmp_path / "op.npz")
    r = invoke("info", tmp_path / "op.npz")
    assert r.exit_code == 0 and "conv2d, 4 windows" in r.output and "window" in r.output


def test_export(trace_path, tmp_path):
    out = tmp_path / "s2.npz"
    r = invoke("export", trace_path, "--step", 2, "--layer", 1, "-o", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as z:
        assert sorted(z.files) == ["grad_x", "grad_y", "x", "y"]
        assert np.array_equal(z["y"], load(trace_path).feature_map(1, 2))
    r = invoke("export", trace_path, "--step", 2, "--layer", 0, "-o", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as z:  # the images need no gradient, so training skips the first conv's grad_x
        assert sorted(z.files) == ["grad_y", "x", "y"]
    r = invoke("export", trace_path, "--param", "3.weight", "-o", tmp_path / "w.npz")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "w.npz") as z:
        assert z["steps"].tolist() == [0, 2, 4] and z["grad"].shape == (3, 3, 32)
    r = invoke("export", trace_path, "--step", 4, "-o", tmp_path / "all.npz")
    assert r.exit_code == 0 and "param/3.weight/grad" in r.output


@pytest.mark.parametrize("args,code,text", [
    (["--step", 1], 2, "step 1 was not recorded"),
    (["--step", 2, "--layer", 7], 2, "layer '7' was not recorded"),
    (["--param", "9.bias"], 2, "parameter '9.bias' was not recorded"),
    ([], 2, "--step is required"),
])
def test_export_usage_errors(trace_path, tmp_path, args, code, text):
    r = invoke("export", trace_path, *args, "-o", tmp_path / "x.npz")
    assert r.exit_code == code and text in r.output and "Traceback" not in r.output


def test_bad_files_exit_1_without_traceback(tmp_path, trace_path):
    junk = tmp_path / "junk.nctrace"
    junk.write_bytes(b"not a trace at all")
    newer = tmp_path / "newer.nctrace"
    newer.mkdir()
    m = json.loads((trace_path / "manifest.json").read_text())
    (newer / "manifest.json").write_text(json.dumps(dict(m, version=m["version"] + 1)))
    for bad, text in ((junk, "not a trace file"), (newer, "newer"), (tmp_path / "nope", "does not exist"),
                      (tmp_path, "is not a numbacnn trace")):
        for cmd in (["info", bad], ["export", bad, "--step", 0, "-o", tmp_path / "o.npz"]):
            r = invoke(*cmd)
            assert r.exit_code == 1, (cmd, r.output)
            assert f"Error: {str(bad)!r}" in r.output, (cmd, r.output)  # the message names the file ...
            assert text in r.output, (cmd, text, r.output)  # ... and says what is wrong with it
            assert "Traceback" not in r.output, (cmd, r.output)
            assert r.exception is None or isinstance(r.exception, SystemExit), (cmd, r.exception)


FASHION = str(locate_fashion_mnist() or "")  # where the loader finds the data set (its own search), or ""
NO_DATA = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"


@pytest.mark.realdata
@pytest.mark.skipif(not FASHION, reason=NO_DATA)
def test_train_lenet_trace_option(tmp_path):
    path = tmp_path / "lenet.nctrace"
    r = CliRunner().invoke(main, ["train-lenet", "--limit", "64", "--batch-size", "32", "--epochs", "1",
                                  "--data-dir", FASHION, "--no-download", "--trace", str(path),
                                  "--trace-every", "1", "--trace-samples", "2"])
    assert r.exit_code == 0, r.output
    t = load(path)
    assert t.complete and t.steps.tolist() == [0, 1] and len(t.layers) == 12
    assert t.feature_map(0, 1).shape == (2, 6, 28, 28) and t.feature_map(11, 0).shape == (2, 10)
    assert t.hyperparameters["batch_size"] == 32 and len(t.scalars()["loss"]) == 2
    r = CliRunner().invoke(main, ["train-lenet", "--limit", "64", "--data-dir", FASHION, "--no-download",
                                  "--trace", str(tmp_path)])
    assert r.exit_code == 2 and "not a numbacnn trace" in r.output


@pytest.mark.realdata
@pytest.mark.skipif(not FASHION, reason=NO_DATA)
def test_train_lenet_trace_probe_is_the_first_test_images(tmp_path):
    from numbacnn.data import load_fashion_mnist
    from numbacnn.models import lenet

    args = ["train-lenet", "--limit", "64", "--batch-size", "32", "--epochs", "1", "--data-dir", FASHION,
            "--no-download", "--trace-every", "1"]
    path = tmp_path / "probe.nctrace"
    r = CliRunner().invoke(main, [*args, "--trace", str(path), "--trace-samples", "3"])
    assert r.exit_code == 0, r.output
    t = load(path)
    test_images = load_fashion_mnist(FASHION, download_missing=False).test_images[:3]
    assert t.has_probe and t.manifest["sampling"]["probe"] == 3 and t.steps.tolist() == [0, 1]
    for k, s in enumerate(t.steps.tolist()):
        assert np.array_equal(t.probe_map(0, s, "x"), test_images)  # the same images at every step
        net = lenet("d2l", init="xavier", seed=0)  # the recorded parameters before the step, forward again
        net.load_state_dict({name: t.param(name)[k] for name in t.params})
        assert np.array_equal(t.probe_map(11, s), net.forward(test_images)) and t.probe_map(11, s).shape == (3, 10)
    assert not np.array_equal(t.feature_map(0, 0, "x")[:3], test_images)  # the batch is training data
    help_text = " ".join(CliRunner().invoke(main, ["train-lenet", "--help"]).output.split())
    assert "test images as a fixed probe" in help_text
    info = CliRunner().invoke(main, ["trace", "info", str(path)]).output
    assert "probe:    3 fixed examples" in info
    r = CliRunner().invoke(main, [*args, "--trace", str(tmp_path / "none.nctrace"), "--trace-samples", "0"])
    assert r.exit_code == 0, r.output
    assert not load(tmp_path / "none.nctrace").has_probe


@pytest.mark.parametrize("where, text", [("nodir/x.npz", "does not exist"), ("x.txt", "use .npz"),
                                         (".", "is a directory")])
def test_export_output_is_checked_before_the_trace_is_read(tmp_path, where, text):
    """-o is checked while the options are parsed: a usage error naming it, before the (here unreadable) trace
    is opened, and no folder is created."""
    junk = tmp_path / "junk.nctrace"
    junk.write_bytes(b"not a trace at all")
    out = tmp_path / where
    r = invoke("export", junk, "--step", 0, "-o", out)
    assert r.exit_code == 2, r.output
    assert "'--output' / '-o'" in r.output and text in r.output and "not a trace file" not in r.output
    assert not (tmp_path / "nodir").exists() and not (tmp_path / "x.txt").exists()
