"""explore RUN.nctrace in a real headless browser: a small run recorded here with numbacnn.trace.Tracer; every
recorded step scrubbed, every layer and parameter view opened; what the page shows equals what the trace holds
(losses exactly to 6 digits; maps and parameters to their 8-bit level, with exact min and max), the predictions
are the probe's argmax; nothing fetched, no script error; the CLI's short form and its errors."""
import numpy as np
import pytest
from click.testing import CliRunner
from explore_browser import assert_clean, assert_offline_html, browser_on, set_control, text, write_page

from numbacnn import nn
from numbacnn.optim import SGD
from numbacnn.trace import Tracer, load, trace_conv2d
from numbacnn.train import train_batch


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "tiny.nctrace"
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(2 * 3 * 3, 3, rng=0))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    probe = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    with Tracer(model, opt, path, every=2, samples=2, probe=probe, meta={"probe_labels": [0, 2]}):
        for _ in range(7):
            train_batch(model, opt, rng.standard_normal((4, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 4))
    return path


@pytest.fixture(scope="module")
def page_path(trace_path, tmp_path_factory):
    return write_page(tmp_path_factory, [str(trace_path)], "run.html")  # the short form


@pytest.fixture(scope="module")
def driver(page_path):
    yield from browser_on(page_path)


def scrub(driver, k):
    driver.execute_script("const s=document.getElementById('scrub'); s.value=String(arguments[0]);"
                          "s.dispatchEvent(new Event('input'))", k)


def check_q8(driver, js_path, want):
    """The array the page holds at ``js_path`` (NC_DATA...) decodes to ``want`` within half an 8-bit level."""
    got = driver.execute_script(f"return NC.decoded({js_path})")
    lo, hi = driver.execute_script(f"return [{js_path}.lo, {js_path}.hi]")
    assert np.float32(lo) == want.min() and np.float32(hi) == want.max()
    step = (float(want.max()) - float(want.min())) / 255
    np.testing.assert_allclose(np.array(got, np.float64), want.ravel().astype(np.float64), rtol=0,
                               atol=step / 2 * 1.001 + 1e-12)


def test_page_is_self_contained(page_path):
    assert_offline_html(page_path.read_text())


def test_every_step_layer_and_parameter(driver, trace_path):
    t = load(trace_path)
    sc = t.scalars()
    steps = [int(s) for s in t.steps]
    assert driver.execute_script("return NC_DATA.steps") == steps == [0, 2, 4, 6]
    for k, s in enumerate(steps):
        scrub(driver, k)
        assert text(driver, "scrub-text").startswith(f"step {s} ")
        i = list(sc["step"]).index(s)
        for name in ("loss", "acc"):
            shown = float(driver.execute_script(f"return document.getElementById('{name}').dataset.v"))
            assert shown == pytest.approx(sc[name][i], rel=6e-6)
        for layer in t.layers:
            driver.execute_script(f"document.querySelector('button[data-layer=\"{layer}\"]').click()")
            assert "sel" in driver.execute_script(
                f"return document.querySelector('button[data-layer=\"{layer}\"]').className")
            base = f"NC_DATA.at[{k}].layers['{layer}']"
            check_q8(driver, base + ".y", t.probe_map(layer, s))
            check_q8(driver, base + ".gy", t.feature_map(layer, s, "grad_y"))
            assert driver.execute_script("return document.querySelectorAll('#main canvas, #main table').length") > 0
        check_q8(driver, f"NC_DATA.at[{k}].layers['0'].x", t.probe_map(0, s, "x"))
        for kind, name in (("value", "value"), ("grad", "grad"), ("momentum", "momentum_after"), ("update", "update")):
            set_control(driver, "kind", kind)
            for p in t.params:
                check_q8(driver, f"NC_DATA.at[{k}].params['{p}'].{kind}", t.param(p, name)[k])
        # predictions: the argmax of the probe's logits, named, with the true label
        logits = t.probe_map(t.layers[-1], s)
        preds = driver.execute_script("return Array.from(document.querySelectorAll('.pred')).map(e => e.textContent)")
        for j, (row, true) in enumerate(zip(logits, [0, 2])):
            c = int(np.argmax(row))
            assert preds[j].startswith(f"example {j}: predicted class {c}, true class {true}")
            assert preds[j].endswith("✓" if c == true else "✗")
    assert_clean(driver)


def test_keys_step(driver):
    scrub(driver, 0)
    driver.find_element("tag name", "body").send_keys("\ue014")
    assert text(driver, "scrub-text").startswith("step 2 ")
    assert_clean(driver)


def test_cli_errors(tmp_path):
    from numbacnn.cli import main

    r = CliRunner().invoke(main, ["explore", str(tmp_path / "none.nctrace")])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
    op = tmp_path / "op.npz"
    trace_conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32)).save(op)
    r = CliRunner().invoke(main, ["explore", "run", str(op), "-o", str(tmp_path / "x.html")])
    assert r.exit_code == 1 and "op trace" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.html").exists()
