"""Model-level traces: round trip, exactness against the ops, sampling, crash safety, size and memory bounds."""
import json
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

import numbacnn as nc
from numbacnn import nn
from numbacnn.optim import SGD, sgd
from numbacnn.trace import Trace, TraceError, Tracer, load
from numbacnn.train import train_batch


def tiny_model(seed=0):
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=seed), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(2 * 3 * 3, 3, rng=seed))


def batch(seed=0, n=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, n)


def run(tmp_path, steps=5, name="t.nctrace", momentum=0.9, **kw):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=momentum, weight_decay=1e-3)
    path = tmp_path / name
    with Tracer(model, opt, path, meta={"batch_size": 4}, **kw) as tracer:
        for s in range(steps):
            x, y = batch(s)
            loss, correct = train_batch(model, opt, x, y)
            tracer.log(loss=loss, acc=correct / len(y))
    return load(path), model, opt


def test_round_trip_and_exactness(tmp_path):
    t, model, opt = run(tmp_path, steps=4, every=1, samples=4)
    assert isinstance(t, Trace) and t.complete
    assert t.steps.tolist() == [0, 1, 2, 3]
    assert t.layers == ["0", "1", "2", "3", "4"] and t.params == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert t.hyperparameters["lr"] == 0.1 and t.hyperparameters["batch_size"] == 4
    assert t.manifest["target"] == "cpu" and t.manifest["numbacnn_version"] == nc.__version__
    sc = t.scalars()
    assert sc["step"].tolist() == [0, 1, 2, 3] and np.isfinite(sc["loss"]).all() and (sc["acc"] <= 1).all()
    for k, s in enumerate(t.steps):
        x, y = batch(int(s))
        w, b = t.param("0.weight")[k], t.param("0.bias")[k]
        lw, lb = t.param("4.weight")[k], t.param("4.bias")[k]
        # the recorded feature maps are exactly what the ops compute from the recorded inputs and parameters
        assert np.array_equal(t.feature_map(0, s, "x"), x)
        assert np.array_equal(t.feature_map(0, s), nc.conv2d(x, w, b, padding=1))
        assert np.array_equal(t.feature_map(1, s), nc.sigmoid(t.feature_map(0, s)))
        assert np.array_equal(t.feature_map(2, s), nc.avg_pool2d(t.feature_map(1, s), 2))
        assert np.array_equal(t.feature_map("4", s), nc.linear(t.feature_map(3, s), lw, lb))
        for i in range(1, 5):
            assert np.array_equal(t.feature_map(i, s, "x"), t.feature_map(i - 1, s, "y"))
            assert np.array_equal(t.feature_map(i, s, "grad_x"), t.feature_map(i - 1, s, "grad_y").reshape(
                t.feature_map(i, s, "grad_x").shape))
        _, gw, gb = nc.conv2d_backward(t.feature_map(0, s, "grad_y"), x, w, b, padding=1)
        assert np.array_equal(t.grad("0.weight")[k], gw) and np.array_equal(t.grad("0.bias")[k], gb)
        with pytest.raises(KeyError):  # train_step skips the first conv's input gradient: images need none
            t.feature_map(0, s, "grad_x")
        # the optimizer step replays exactly from the recorded value, gradient and momentum buffer
        for name in t.params:
            p = t.param(name)[k].copy()
            before = t.param(name, "momentum_before")[k]
            bufs = [None if k == 0 else before.copy()]
            assert np.isnan(before).all() == (k == 0)
            sgd([p], [t.grad(name)[k]], bufs, lr=0.1, momentum=0.9, weight_decay=1e-3)
            assert np.array_equal(p, t.param(name, "value_after")[k])
            assert np.array_equal(bufs[0], t.momentum(name)[k])
            assert np.array_equal(t.param(name, "update")[k], t.param(name, "value_after")[k] - t.param(name)[k])
        if k + 1 < len(t.steps):
            assert np.array_equal(t.param("0.weight", "value_after")[k], t.param("0.weight")[k + 1])
    assert np.array_equal(t.param("4.bias", "value_after")[-1], model[4].bias.data)


def test_sampling_and_selection(tmp_path):
    t, _, _ = run(tmp_path, steps=7, every=3, samples=2, layers=[0, "4"], params=["0.weight"])
    assert t.steps.tolist() == [0, 3, 6]
    assert t.layers == ["0", "4"] and t.params == ["0.weight"]
    assert t.feature_map(0, 3).shape == (2, 2, 6, 6) and t.feature_map(4, 6, "grad_y").shape == (2, 3)
    fms = t.feature_maps(0)
    assert fms.shape == (3, 2, 2, 6, 6) and np.array_equal(fms[1], t.feature_map(0, 3))
    assert t.manifest["layers"][0]["y"] == {"shape": [2, 6, 6], "dtype": "float32"}
    assert t.param("0.weight").shape == (3, 2, 1, 3, 3)
    assert len(t.scalars()["step"]) == 7
    with pytest.raises(KeyError, match="not recorded"):
        t.feature_map(1, 0)
    with pytest.raises(KeyError, match="not recorded"):
        t.feature_map(0, 1)
    with pytest.raises(KeyError, match="not recorded"):
        t.param("0.bias")
    t0, _, _ = run(tmp_path, steps=2, name="p.nctrace", every=1, samples=0)
    assert t0.layers == [] and not any(k.startswith("layer/") for k in t0.step_arrays(1))


def test_eval_forward_between_steps_is_not_recorded(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with Tracer(model, opt, tmp_path / "e.nctrace", every=1, samples=4) as tracer:
        x, y = batch(0)
        train_batch(model, opt, x, y)
        model.eval()
        model.forward(batch(9, n=3)[0])  # an evaluation pass: not part of step 1
        model.train()
        train_batch(model, opt, *batch(1))
        assert tracer.step == 2
    t = load(tmp_path / "e.nctrace")
    assert np.array_equal(t.feature_map(0, 1, "x"), batch(1)[0])


def test_close_detaches_and_errors_mark_incomplete(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError):
        with Tracer(model, opt, tmp_path / "x.nctrace", every=1):
            train_batch(model, opt, *batch(0))
            raise RuntimeError("boom")
    assert "step" not in opt.__dict__ and model._observers == []
    t = load(tmp_path / "x.nctrace")
    assert not t.complete and "boom" in t.manifest["error"] and t.steps.tolist() == [0]


def test_the_tracer_subscribes_to_the_step_hooks_and_patches_nothing(tmp_path):
    """The tracer is one step pre-hook and one post-hook of the optimizer (``optimizer.step`` stays the class's);
    close() unsubscribes both, other hooks keep running, and training goes on untraced."""
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    seen = []
    other = opt.register_step_post_hook(lambda o, args, kwargs: seen.append(len(seen)))
    tracer = Tracer(model, opt, tmp_path / "h.nctrace", every=1)
    assert "step" not in opt.__dict__ and type(opt).step is SGD.step
    assert len(opt._pre_hooks) == 1 and len(opt._post_hooks) == 2 and model._observers == [tracer]
    train_batch(model, opt, *batch(0))
    tracer.close()
    assert opt._pre_hooks == {} and list(opt._post_hooks) == [other.id]
    assert model._observers == [] and "step" not in opt.__dict__
    train_batch(model, opt, *batch(1))  # after close: no step recorded, the count stays
    assert seen == [0, 1] and tracer.step == 1 and load(tmp_path / "h.nctrace").steps.tolist() == [0]
    with pytest.raises(TypeError, match="register_step_pre_hook"):
        Tracer(model, object(), tmp_path / "o.nctrace")


@pytest.mark.parametrize("background", [True, False])
def test_a_failed_write_stops_training_with_a_clear_error(tmp_path, monkeypatch, background):
    import numbacnn.trace.writer as tm

    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    tracer = Tracer(model, opt, tmp_path / "f.nctrace", every=1, background=background)
    train_batch(model, opt, *batch(0))
    tracer.flush()  # step 0 is on disk before the disk "fills up"

    def disk_full(path, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tm, "save_npz", disk_full)
    with pytest.raises(TraceError, match="No space left"):
        train_batch(model, opt, *batch(1))  # inline: fails here; background: at the next step or flush
        tracer.flush()
    monkeypatch.undo()
    with pytest.raises(TraceError, match="No space left"):
        tracer.close()
    t = load(tmp_path / "f.nctrace")
    assert t.steps.tolist() == [0] and not t.complete


def test_tracer_argument_errors(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="every"):
        Tracer(model, opt, tmp_path / "a", every=0)
    with pytest.raises(ValueError, match="samples"):
        Tracer(model, opt, tmp_path / "a", samples=-1)
    with pytest.raises(ValueError, match="layers"):
        Tracer(model, opt, tmp_path / "a", layers=[7])
    with pytest.raises(ValueError, match="params"):
        Tracer(model, opt, tmp_path / "a", params=["9.weight"])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a numbacnn trace"):
        Tracer(model, opt, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").exists()


def test_bad_files(tmp_path):
    t, _, _ = run(tmp_path, steps=3, every=1)
    path = tmp_path / "t.nctrace"
    with pytest.raises(TraceError, match="does not exist"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="is not a numbacnn trace: its manifest"):
        load(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(TraceError):
        load(tmp_path / "notes.txt")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(TraceError, match="newer"):
        load(path)
    (path / "manifest.json").write_text(json.dumps(dict(manifest, format="something-else")))
    with pytest.raises(TraceError, match="not a numbacnn trace"):
        load(path)
    (path / "manifest.json").write_text(json.dumps(manifest)[:50])
    with pytest.raises(TraceError, match="truncated"):
        load(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    chunk = path / "steps" / "step-00000001.npz"
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])
    t = load(path)
    t.feature_map(0, 0)  # other steps still load
    with pytest.raises(TraceError, match="truncated"):
        t.feature_map(0, 1)
    assert issubclass(TraceError, ValueError)


KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from numbacnn import nn
    from numbacnn.optim import SGD
    from numbacnn.trace import Tracer
    from numbacnn.train import train_batch
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=0))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    tracer = Tracer(model, opt, sys.argv[1], every=1, samples=2)
    while True:  # until killed
        x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
        loss, correct = train_batch(model, opt, x, rng.integers(0, 3, 4))
        tracer.log(loss=loss, acc=correct / 4)
""")


def test_sigkill_leaves_a_loadable_trace(tmp_path):
    path = tmp_path / "killed.nctrace"
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if len(json.loads((path / "manifest.json").read_text())["steps"]) >= 5:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    t = load(path)
    assert not t.complete and len(t.steps) >= 5
    assert t.steps.tolist() == list(range(len(t.steps)))
    for s in t.steps:  # every listed step is whole
        assert t.feature_map(0, s).shape == (2, 2, 4, 4)
    assert t.param("3.weight", "momentum_after").shape[0] == len(t.steps)


def test_long_run_size_and_memory_bounds(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=0))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    path = tmp_path / "long.nctrace"
    sizes, peaks = [], []
    with Tracer(model, opt, path, every=2, samples=2) as tracer:
        tracemalloc.start()
        try:
            for phase in range(3):
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                for _ in range(40):
                    loss, correct = train_batch(model, opt, x, y)
                    tracer.log(loss=loss, acc=correct / 8)
                tracer.flush()
                peaks.append(tracemalloc.get_traced_memory()[1] - base)
                sizes.append(sum(tracer.manifest["step_bytes"]))
        finally:
            tracemalloc.stop()
    t = load(path)
    assert len(t.steps) == 60 and len(t.scalars()["step"]) == 120
    first, *rest = t.manifest["step_bytes"]  # step 0 has no momentum buffer before it
    per_step = set(rest)
    assert len(per_step) == 1  # the same shapes every later recorded step: a constant chunk size
    per_step = per_step.pop()
    assert sizes == [first + (20 * k - 1) * per_step for k in (1, 2, 3)]  # size grows linearly with the steps
    assert t.size_bytes() < 4_000_000
    # memory does not grow with the number of steps: the last phase peaks no higher than the first (+ slack)
    assert peaks[2] < peaks[0] + 200_000, peaks


# --- the fixed probe: the same examples at every recorded step, forward with the parameters the batch used


def probe_images(n=3, hw=6, seed=42):
    return np.random.default_rng(seed).standard_normal((n, 1, hw, hw)).astype(np.float32)


def layer_outputs(model, x):
    """[(x, y)] of every layer of a Sequential, run on a copy of ``model`` (the model itself is untouched)."""
    copy = tiny_model()
    copy.load_state_dict(model.state_dict())
    out = []
    for layer in copy:
        y = layer.forward(x)
        out.append((x, y))
        x = y
    return out


def train_plain(steps, momentum=0.9, probe=None, every=2):
    """The training of ``run`` without a tracer; with ``probe``, the probe's layer outputs before each step
    that a tracer with ``every`` records."""
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=momentum, weight_decay=1e-3)
    refs = {}
    for s in range(steps):
        if probe is not None and s % every == 0:
            refs[s] = layer_outputs(model, probe)
        train_batch(model, opt, *batch(s))
    return model, opt, refs


def test_probe_recorded_at_each_recorded_step_with_the_parameters_before_the_update(tmp_path):
    probe = probe_images()
    t, model, opt = run(tmp_path, steps=5, every=2, samples=2, probe=probe)
    _, _, refs = train_plain(5, probe=probe, every=2)
    assert t.has_probe and t.manifest["sampling"]["probe"] == 3
    assert t.steps.tolist() == [0, 2, 4] and sorted(refs) == [0, 2, 4]
    for k, s in enumerate(t.steps.tolist()):
        for i in range(5):
            x, y = refs[s][i]
            assert np.array_equal(t.probe_map(i, s, "x"), x) and np.array_equal(t.probe_map(str(i), s), y)
        assert np.array_equal(t.probe_map(0, s, "x"), probe)  # the same images at every step
        # the batch's records are the batch's, not the probe's
        assert np.array_equal(t.feature_map(0, s, "x"), batch(s)[0][:2])
        assert t.feature_map(4, s).shape == (2, 3) and t.probe_map(4, s).shape == (3, 3)
        # the probe ran with the recorded parameters before the update (value, not value_after)
        w, b = t.param("0.weight")[k], t.param("0.bias")[k]
        assert np.array_equal(t.probe_map(0, s), nc.conv2d(probe, w, b, padding=1))
    assert t.probe_maps(2).shape == (3, 3, 2, 3, 3)
    assert np.array_equal(t.probe_maps(4, "y", steps=[2])[0], t.probe_map(4, 2))
    assert not np.array_equal(t.probe_map(4, 0), t.probe_map(4, 4))  # training moved the probe's logits
    with pytest.raises(ValueError, match="kind"):
        t.probe_map(0, 0, "grad_y")
    with pytest.raises(KeyError, match="step 1 was not recorded"):
        t.probe_map(0, 1)
    # only the chosen layers; samples=0 keeps the probe (and the layer shapes in the manifest)
    t2, _, _ = run(tmp_path, steps=3, name="sel.nctrace", every=1, samples=0, layers=[1, 4], probe=probe[:1])
    assert t2.layers == ["1", "4"] and t2.manifest["sampling"]["probe"] == 1
    assert sorted(t2.step_arrays(2)) == sorted(k for k in t2.step_arrays(2) if not k.startswith("layer/"))
    assert {k for k in t2.step_arrays(2) if k.startswith("probe/")} == {"probe/1/x", "probe/1/y", "probe/4/x",
                                                                       "probe/4/y"}
    assert t2.probe_map(4, 2).shape == (1, 3) and t2.manifest["layers"][0]["y"]["shape"] == [2, 6, 6]
    with pytest.raises(KeyError, match="not recorded"):
        t2.probe_map(0, 0)


def test_training_is_bit_identical_with_and_without_a_probe(tmp_path):
    probe = probe_images(5)
    results = [run(tmp_path, steps=5, name=f"{k}.nctrace", every=1, probe=p)[1:]
               for k, p in enumerate([probe, None])] + [train_plain(5)[:2]]
    (m0, o0), *others = results
    for m, o in others:
        for (name, p), q in zip(m0.named_parameters(), m.parameters()):
            assert np.array_equal(p.data, q.data), name
            assert np.array_equal(p.grad, q.grad), name
            assert np.array_equal(o0.state[p]["momentum_buffer"], o.state[q]["momentum_buffer"]), name


def test_probe_forward_leaves_the_layers_saved_inputs(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with Tracer(model, opt, tmp_path / "s.nctrace", every=1, samples=1, probe=probe_images(2)):
        x, y = batch(0)
        train_batch(model, opt, x, y)
    # what backward would read is still the batch's forward, not the probe's
    assert np.array_equal(model[0]._saved, x) and model[3]._saved == (4, 2, 3, 3)
    assert model[4]._saved.shape == (4, 18)


def test_probe_argument_errors_and_manifest(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"probe must be examples \(N, C, H, W\).*\(1, 6, 6\)"):
        Tracer(model, opt, tmp_path / "a", probe=np.zeros((1, 6, 6)))
    with pytest.raises(ValueError, match=r"probe.*\(0, 1, 6, 6\)"):
        Tracer(model, opt, tmp_path / "a", probe=np.zeros((0, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"probe has shape \(2, 3, 6, 6\): 1 channels expected"):
        Tracer(model, opt, tmp_path / "a", probe=np.zeros((2, 3, 6, 6)))
    with pytest.raises(ValueError, match="probe must hold numbers"):
        Tracer(model, opt, tmp_path / "a", probe=np.full((1, 1, 6, 6), "a"))
    assert model._observers == [] and "step" not in opt.__dict__
    # a per-example shape the model does not take: found at the first recorded step, before any update
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"probe has shape \(2, 1, 5, 5\).*\(1, 6, 6\)"):
        with Tracer(model, opt, tmp_path / "b", probe=np.zeros((2, 1, 5, 5))):
            train_batch(model, opt, *batch(0))
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())
    t = load(tmp_path / "b")
    assert not t.complete and t.manifest["sampling"]["probe"] == 2
    # a list of lists is a probe too (converted to float32, as training feeds the model)
    t, _, _ = run(tmp_path, steps=1, name="l.nctrace", every=1, probe=probe_images(1).astype(np.float64).tolist())
    assert t.probe_map(0, 0, "x").dtype == np.float32 and t.has_probe


def test_traces_without_a_probe(tmp_path):
    t, _, _ = run(tmp_path, steps=2, every=1)
    assert t.manifest["sampling"]["probe"] == 0 and not t.has_probe
    with pytest.raises(KeyError, match="no probe"):
        t.probe_map(0, 0)
    # a trace written before probes existed (no "probe" in its sampling) still loads
    path = tmp_path / "t.nctrace"
    m = json.loads((path / "manifest.json").read_text())
    del m["sampling"]["probe"]
    (path / "manifest.json").write_text(json.dumps(m))
    old = load(path)
    assert not old.has_probe and old.feature_map(0, 1).shape == (4, 2, 6, 6)
    with pytest.raises(KeyError, match="no probe"):
        old.probe_map(0, 1)


def test_resume_continues_a_trace_dropping_what_came_after_the_checkpoint(tmp_path):
    """Tracer(resume=True, start_step=s): the steps and logged rows from s on (recorded after the checkpoint being
    resumed) are dropped and the run goes on in the same folder; the result equals an uninterrupted trace."""
    straight, _, _ = run(tmp_path, steps=6, name="straight.nctrace", every=1, samples=2)
    model, path = tiny_model(), tmp_path / "t.nctrace"
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    with Tracer(model, opt, path, every=1, samples=2, meta={"batch_size": 4}) as tracer:
        for s in range(5):  # five steps recorded; the "checkpoint" below is taken after step 2
            if s == 3:
                weights = {k: v.copy() for k, v in model.state_dict().items()}
                bufs = [b.copy() for b in opt.state_dict()["momentum_buffers"]]
            x, y = batch(s)
            loss, correct = train_batch(model, opt, x, y)
            tracer.log(loss=loss, acc=correct / len(y))
    (path / "steps" / ".numbacnn-tmp.step-00000005.npz.x1y2.npz").write_bytes(b"half")  # a killed write's debris
    model = tiny_model()
    model.load_state_dict(weights)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt.load_state_dict({"defaults": opt.defaults, "momentum_buffers": bufs})
    with pytest.raises(ValueError, match="another run .*sampling every"):
        Tracer(model, opt, path, every=2, samples=2, start_step=3, resume=True)
    with Tracer(model, opt, path, every=1, samples=2, start_step=3, resume=True, meta={"batch_size": 4}) as tracer:
        for s in range(3, 6):
            x, y = batch(s)
            loss, correct = train_batch(model, opt, x, y)
            tracer.log(loss=loss, acc=correct / len(y))
    t = load(path)
    assert t.complete and t.manifest["resumed_at"] == [3] and t.problems(verify=True) == []
    assert t.steps.tolist() == straight.steps.tolist() == list(range(6))
    assert np.array_equal(t.scalars()["loss"], straight.scalars()["loss"])
    for name in t.params:
        assert np.array_equal(t.param(name, "value_after"), straight.param(name, "value_after"))
    assert sorted(p.name for p in (path / "steps").iterdir()) == [f"step-{s:08d}.npz" for s in range(6)]
    damaged = tmp_path / "damaged.nctrace"
    import shutil

    shutil.copytree(path, damaged)
    (damaged / "steps" / "step-00000001.npz").write_bytes(b"x")
    with pytest.raises(TraceError, match="damaged and cannot be continued"):
        Tracer(model, opt, damaged, every=1, samples=2, start_step=6, resume=True)
