"""Loss and accuracy in model traces: train_batch reports them to the Tracer (no tracer.log needed), one row per
step even with an explicit log, and evaluate's test accuracy stays out of the trace."""
import numpy as np

import numbacnn.trace.model as trace_model
from numbacnn import nn
from numbacnn.optim import SGD
from numbacnn.trace import Tracer, load
from numbacnn.train import evaluate, train_batch, train_step


def tiny_model():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(2 * 3 * 3, 3, rng=0))


def batch(seed, n=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, n)


def test_train_batch_records_loss_and_accuracy_without_log(tmp_path):
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    expected = []
    with Tracer(model, opt, tmp_path / "t.nctrace", every=2, samples=1):
        for s in range(5):
            loss, correct = train_batch(model, opt, *batch(s))
            expected.append((loss, correct / 4))
        train_step(model, opt, *batch(5))  # train_step reports too
        evaluate(model, *batch(9, n=6))  # test accuracy: not a row of the trace
    sc = load(tmp_path / "t.nctrace").scalars()
    assert sc["step"].tolist() == [0, 1, 2, 3, 4, 5]
    assert sc["loss"][:5].tolist() == [loss for loss, _ in expected]
    assert sc["acc"][:5].tolist() == [acc for _, acc in expected]
    assert np.isfinite(sc["loss"][5]) and np.isfinite(sc["acc"][5])


def test_an_explicit_log_replaces_the_reported_values_of_its_step(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_model, "SCALAR_FLUSH", 3)  # rows leave memory in chunks while the run goes on
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    with Tracer(model, opt, tmp_path / "t.nctrace", every=4, samples=0, background=False) as tracer:
        for s in range(10):
            loss, correct = train_batch(model, opt, *batch(s))
            tracer.log(loss=100.0 + s)  # the loss replaced, the reported accuracy kept
            assert tracer._scalars[-1] == (s, 100.0 + s, correct / 4)
    sc = load(tmp_path / "t.nctrace").scalars()
    assert sc["step"].tolist() == list(range(10))  # one row per step, never two
    assert sc["loss"].tolist() == [100.0 + s for s in range(10)]
    assert np.isfinite(sc["acc"]).all()


def test_other_observers_need_no_on_scalars():
    class Seen:
        def __init__(self):
            self.calls = 0

        def on_forward(self, *a):
            self.calls += 1

        def on_backward(self, *a):
            pass

    model = tiny_model()
    obs = model.add_observer(Seen())
    train_batch(model, SGD(model.parameters(), lr=0.1), *batch(0))
    assert obs.calls == len(model)
