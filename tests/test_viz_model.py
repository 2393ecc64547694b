"""Animations of model traces (features, sgd --trace) and the scenarios behind learn-kernel and sgd."""
import numpy as np
import pytest
from click.testing import CliRunner

import numbacnn as nc
from numbacnn import nn, scenarios, viz
from numbacnn.cli import main
from numbacnn.trace import Tracer, load
from numbacnn.train import train_batch


@pytest.fixture(scope="module")
def run_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("tr") / "run.nctrace"
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 3, rng=rng))
    opt = nc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rng.random((4, 1, 6, 6), dtype=np.float32)
    y = np.array([0, 1, 2, 1])
    with Tracer(model, opt, path, every=1, samples=2) as tr:
        for _ in range(3):
            loss, correct = train_batch(model, opt, x, y)
            tr.log(loss=loss, acc=correct / 4)
    return path


def test_features_one_frame_per_recorded_step(run_trace):
    trace = load(run_trace)
    anim = viz.features(trace, example=1, dpi=40)
    assert len(anim) == len(trace.steps) == 3
    anim.show(2)
    cols = anim.artists["columns"]
    assert "Flatten" not in " ".join(cols)
    step = trace.steps[2]
    # the conv layer's column shows exactly the traced feature maps of example 1
    conv_col = anim.artists["images"][1]
    fm = trace.feature_map("0", step, "y")[1]
    for c, im in enumerate(conv_col):
        assert np.array_equal(np.asarray(im.get_array()), fm[c].astype(np.float64))
    assert f"step {step}" in anim.artists["caption"].get_text()
    # colours scaled per frame to the column's 99.5th percentile of |value|, printed under its name
    m = float(np.percentile(np.abs(fm[:6].astype(np.float64)), 99.5))
    signed = anim.record["signed"][1]
    assert np.allclose(conv_col[0].get_clim(), (-m if signed else 0.0, m))
    assert f"{m:.2g}" in anim.artists["heads"][1].get_text()
    with pytest.raises(ValueError, match="example 5"):
        viz.features(trace, example=5)


def test_features_default_to_the_fixed_probe(tmp_path):
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3, rng=rng))
    opt = nc.optim.SGD(model.parameters(), lr=0.1)
    probe = rng.random((2, 1, 6, 6), dtype=np.float32)
    with Tracer(model, opt, tmp_path / "p.nctrace", every=1, samples=2, probe=probe) as tr:
        for _ in range(2):
            x = rng.random((4, 1, 6, 6), dtype=np.float32)  # a new batch each step
            loss, correct = train_batch(model, opt, x, np.array([0, 1, 2, 1]))
            tr.log(loss=loss, acc=correct / 4)
    trace = load(tmp_path / "p.nctrace")
    anim = viz.features(trace, example=1, dpi=30)
    assert anim.record["source"] == "probe" and "fixed example 1" in anim.fig._suptitle.get_text()
    for f, step in enumerate(trace.steps):
        anim.show(f)
        assert np.array_equal(np.asarray(anim.artists["images"][0][0].get_array()), probe[1, 0].astype(np.float64))
        conv = trace.probe_map("0", step, "y")[1]
        assert np.array_equal(np.asarray(anim.artists["images"][1][1].get_array()), conv[1].astype(np.float64))
    batch = viz.features(trace, example=1, source="batch", dpi=30)
    assert batch.record["source"] == "batch"
    with pytest.raises(ValueError, match="source"):
        viz.features(trace, source="nope")


def test_features_without_probe_says_so(run_trace):
    with pytest.raises(ValueError, match="no fixed probe"):
        viz.features(load(run_trace), source="probe")


def _probe_trace(path, log, meta=None, outputs=10):
    """A tiny model traced with a probe of 2 examples; ``log``: train with train_batch, which hands loss and
    accuracy to the tracer; else a loop of one's own that never logs (the trace has no scalars)."""
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(32, outputs, rng=rng))
    opt = nc.optim.SGD(model.parameters(), lr=0.1)
    probe = rng.random((2, 1, 6, 6), dtype=np.float32)
    with Tracer(model, opt, path, every=1, samples=2, probe=probe, meta=meta):
        for _ in range(2):
            x, y = rng.random((4, 1, 6, 6), dtype=np.float32), np.array([0, 1, 2, 1])
            if log:
                train_batch(model, opt, x, y)
            else:
                loss_fn = nn.CrossEntropyLoss()
                loss_fn(model.forward(x), y)
                opt.zero_grad()
                model.backward(loss_fn.backward())
                opt.step()
    return load(path)


def test_features_without_logged_loss_draw_no_loss_panel(tmp_path):
    trace = _probe_trace(tmp_path / "n.nctrace", log=False)
    anim = viz.features(trace, dpi=30)
    assert anim.artists["loss_mark"] is None
    assert not any(ax.get_ylabel() == "training loss" for ax in anim.fig.axes)
    logged = viz.features(_probe_trace(tmp_path / "l.nctrace", log=True), dpi=30)
    assert any(ax.get_ylabel() == "training loss" for ax in logged.fig.axes)
    anim.show(1)
    caption = anim.artists["caption"].get_text()
    assert "loss not logged" in caption and "predicts" in caption


def test_features_name_the_classes_and_the_prediction(tmp_path):
    from numbacnn.data import CLASSES

    trace = _probe_trace(tmp_path / "c.nctrace", log=True, meta={"probe_labels": [9, 2]})
    anim = viz.features(trace, example=1, dpi=30)
    pred = anim.artists["prediction"]
    assert [t.get_text() for t in pred.ax.get_yticklabels()] == list(CLASSES)
    f = len(anim) - 1
    anim.show(f)
    logits = trace.probe_map(trace.layers[-1], trace.steps[f], "y")[1].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    assert np.allclose([b.get_width() for b in pred.bars], p)
    top = int(np.argmax(p))
    caption = anim.artists["caption"].get_text()
    assert f"predicts {CLASSES[top]} ({p[top]:.0%})" in caption and f"true: {CLASSES[2]}" in caption
    assert pred.ax.get_yticklabels()[2].get_fontweight() == "bold"
    # labels given by the caller win; without any, the view says the label is not in the trace
    assert f"true: {CLASSES[5]}" in viz.features(trace, labels=[0, 5], example=1, dpi=30).artists["caption"].get_text()
    batch = viz.features(trace, source="batch", dpi=30)
    assert "true label not in the trace" in batch.artists["caption"].get_text()
    with pytest.raises(ValueError, match="classes"):
        viz.features(trace, classes=["a", "b"])
    three = viz.features(_probe_trace(tmp_path / "3.nctrace", log=False, outputs=3), dpi=30)
    assert three.record["classes"] == ["class 0", "class 1", "class 2"]


def test_sgd_trace_shows_gradient_buffer_update(run_trace):
    trace = load(run_trace)
    anim = viz.sgd_trace(trace, "0.weight", dpi=40)
    assert len(anim) == 3
    assert anim.artists["kinds"] == ["grad", "momentum_after", "update"]
    anim.show(1)
    g = trace.grad("0.weight")[1]  # (2, 1, 3, 3): two kernels tiled side by side
    shown = np.asarray(anim.artists["images"][0].get_array())
    assert np.array_equal(shown[:3, :3], g[0, 0].astype(np.float64))
    assert np.array_equal(shown[:3, 4:7], g[1, 0].astype(np.float64))


def test_cli_features_and_sgd_trace(run_trace, tmp_path):
    runner = CliRunner()
    for args in (["features", str(run_trace)], ["sgd", "--trace", str(run_trace), "--param", "4.weight"]):
        out = tmp_path / "x.gif"
        res = runner.invoke(main, ["animate", *args, "--dpi", "40", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert out.is_file()
    res = runner.invoke(main, ["animate", "sgd", "--trace", str(run_trace), "--param", "nope", "-o",
                               str(tmp_path / "y.gif")])
    assert res.exit_code == 2 and "0.weight" in res.output


def test_learn_kernel_learns_the_edge_kernel():
    rec = scenarios.learn_kernel(steps=10)
    assert rec.losses[-1] < rec.losses[0] / 100
    assert np.allclose(rec.kernels[-1], [[1.0, -1.0]], atol=0.05)
    # every step is plain gradient descent: w_{k+1} = w_k - lr * grad_k
    assert np.allclose(rec.kernels[1:], rec.kernels[:-1] - rec.lr * rec.grads, atol=1e-6)


def test_sgd_paths_follow_pytorch_recurrences():
    run = scenarios.sgd_paths("quadratic", 6, lr=0.3, momentum=0.6, weight_decay=0.01)
    sgd, mom, nest = run["paths"]
    for path in (sgd, mom, nest):
        p, b = np.array([-5.0, -2.0]), None
        for k in range(6):
            g = scenarios.quadratic_grad(*p) + 0.01 * p
            if path.variant == "sgd":
                d = g
            else:
                b = g.copy() if b is None else 0.6 * b + g
                d = g + 0.6 * b if path.variant == "nesterov" else b
            p = p - 0.3 * d
            assert np.allclose(path.positions[k + 1], p)


def test_sgd_paths_reject_bad_settings():
    with pytest.raises(ValueError, match="dampening"):
        scenarios.sgd_paths("quadratic", 3, dampening=0.5)
    with pytest.raises(ValueError, match="surface"):
        scenarios.sgd_paths("banana", 3)


@pytest.mark.parametrize("text", ["", "1,2;3", "a,b", "1,inf"])
def test_parse_kernel_errors_name_the_value(text):
    with pytest.raises(ValueError, match="kernel"):
        scenarios.parse_kernel(text)


def _tiny_animations(run_trace):
    """Every animation (but cuda_grid, covered under the simulator by the CLI tests) at a tiny size."""
    from numbacnn.trace import trace_conv2d, trace_pool2d

    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3) % 4
    w = np.array([[[[1.0, -1.0], [0.0, 2.0]]]], np.float32)
    trace = load(run_trace)
    return {
        "conv": (lambda: viz.conv(trace_conv2d(x, w), dpi=30), 4),
        "conv-backward": (lambda: viz.conv(trace_conv2d(x, w, backward=True), dpi=30), 4 + 9),
        "pool": (lambda: viz.pool(trace_pool2d(x, "max", 2, 1), dpi=30), 4),
        "learn-kernel": (lambda: viz.learn_kernel(scenarios.learn_kernel(steps=2), dpi=30), 2),
        "sgd": (lambda: viz.sgd_paths(scenarios.sgd_paths("quadratic", 2), dpi=30), 2),
        "features": (lambda: viz.features(trace, dpi=30), 3),
        "sgd-trace": (lambda: viz.sgd_trace(trace, "4.weight", dpi=30), 3),
    }


@pytest.mark.parametrize("name", ["conv", "conv-backward", "pool", "learn-kernel", "sgd", "features", "sgd-trace"])
def test_every_animation_saves_in_every_format(run_trace, tmp_path, name):
    from PIL import Image

    make, frames = _tiny_animations(run_trace)[name]
    anim = make()
    assert len(anim) == frames
    with Image.open(anim.save(tmp_path / "a.gif")) as im:
        assert im.n_frames == frames
    with Image.open(anim.save(tmp_path / "a.png")) as im:
        assert im.format == "PNG"
    html = anim.save(tmp_path / "a.html").read_text()
    assert html.count("data:image/png;base64") == frames
