"""explore pool in a real headless browser: every control moved, the numbers on the page equal numbacnn's pooling
kernels (forward and backward) and PyTorch's (through the line the page offers), the picked element is the
kernel's index, gradients are routed where the formula says; nothing fetched, no script error."""
import numpy as np
import pytest
from click.testing import CliRunner
from explore_browser import (assert_clean, assert_offline_html, browser_on, grid, hover, marked, set_control, text,
                             write_page)

import numbacnn as nc
from numbacnn import scenarios
from numbacnn.viz import style


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    return write_page(tmp_path_factory, ["pool"], "pool.html")


@pytest.fixture(scope="module")
def driver(page_path):
    yield from browser_on(page_path)


def input_array(name):
    X = np.arange(36, dtype=np.float32).reshape(6, 6) * 7 % 10 if name == "digits" else scenarios.preset_input(name)
    return X[None, None].astype(np.float32)


def configure(d, inp, mode, k, s, p, ceil, cip, back):
    for cid, v in (("input", inp), ("mode", mode), ("k", k), ("s", s), ("p", p), ("ceil", ceil), ("cip", cip),
                   ("pass", "backward" if back else "forward")):
        set_control(d, cid, v)


def forward(x, mode, k, s, p, ceil, cip):
    if mode == "avg":
        return nc.avg_pool2d(x, k, s, p, ceil, cip), None
    return getattr(nc, f"{mode}_pool2d")(x, k, s, p, 1, ceil, True)


CASES = [("digits", "max", 2, 2, 0, False, True), ("digits", "min", 3, 2, 1, True, True),
         ("checker", "avg", 3, 1, 1, False, False), ("digit", "avg", 2, 3, 1, True, True),
         ("d2l-edge", "max", 3, 3, 1, True, False), ("digits", "avg", 3, 2, 1, True, False),
         ("digit", "min", 2, 1, 0, False, True)]


def test_page_is_self_contained_and_small(page_path):
    html = page_path.read_text()
    assert_offline_html(html)
    assert len(html.encode()) < 8e6


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_forward_numbers_winner_and_divisor(driver, case):
    inp, mode, k, s, p, ceil, cip = case
    configure(driver, inp, mode, k, s, p, ceil, cip, False)
    x = input_array(inp)
    y, idx = forward(x, mode, k, s, p, ceil, cip)
    vals, _, texts = grid(driver, "y")
    np.testing.assert_array_equal(vals, y[0, 0])
    HO, WO = y.shape[2:]
    i, j = HO - 1, WO - 1
    hover(driver, "y", i, j)
    assert driver.execute_script("return document.getElementById('result').textContent") == style.fmt(y[0, 0, i, j], 3)
    _, marks, _ = grid(driver, "x")
    win = {(i * s - p + a + p, j * s - p + b + p) for a in range(k) for b in range(k)}
    assert marked(marks, "win") == {c for c in win if c in marks}
    if idx is not None:
        h, w = divmod(int(idx[0, 0, i, j]), x.shape[3])
        assert marked(marks, "chosen") == {(h + p, w + p)}
    else:
        torch = pytest.importorskip("torch")
        ones = torch.nn.functional.avg_pool2d(torch.ones(1, 1, *x.shape[2:]), k, s, p, ceil, cip,
                                              divisor_override=None)
        # the divisor the caption names is the one PyTorch divides by (ones pooled = window cells counted / divisor)
        real = sum(1 for a in range(k) for b in range(k) if 0 <= i * s - p + a < x.shape[2] and 0 <= j * s - p + b < x.shape[3])
        assert f") / {round(real / float(ones[0, 0, i, j]))} =" in text(driver, "caption")
    torch = pytest.importorskip("torch")
    line = text(driver, "torch").split("  #")[0]
    got = eval(line, {"torch": torch, "x": torch.from_numpy(x)})
    np.testing.assert_allclose(got.numpy(), y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_backward_routing(driver, case):
    inp, mode, k, s, p, ceil, cip = case
    configure(driver, inp, mode, k, s, p, ceil, cip, True)
    x = input_array(inp)
    y, idx = forward(x, mode, k, s, p, ceil, cip)
    gy = grid(driver, "gy")[0][None, None]
    np.testing.assert_array_equal(gy, np.random.default_rng(0).integers(-1, 3, size=y.shape))
    if mode == "avg":
        gx = nc.avg_pool2d_backward(gy, x, k, s, p, ceil, cip)
    else:
        gx = getattr(nc, f"{mode}_pool2d_backward")(gy, x, k, s, p, 1, ceil)
    np.testing.assert_array_equal(grid(driver, "gx")[0], gx[0, 0])
    W = x.shape[3]
    HO, WO = y.shape[2:]
    for h, w in ((0, 0), (x.shape[2] // 2, W - 1)):
        hover(driver, "gx", h, w)
        covers = {(i, j) for i in range(HO) for j in range(WO)
                  if i * s - p <= h < i * s - p + k and j * s - p <= w < j * s - p + k}
        if idx is not None:
            covers = {(i, j) for (i, j) in covers if idx[0, 0, i, j] == h * W + w}
        _, marks, _ = grid(driver, "gy")
        assert marked(marks, "reach") == covers
        assert driver.execute_script("return document.getElementById('result').textContent") == style.fmt(
            gx[0, 0, h, w], 3)
    assert_clean(driver)


def test_count_include_pad_only_for_avg(driver):
    configure(driver, "digits", "max", 2, 2, 0, False, True, False)
    assert driver.execute_script("return document.getElementById('cip').disabled") is True
    set_control(driver, "mode", "avg")
    assert driver.execute_script("return document.getElementById('cip').disabled") is False


def test_keys_step(driver):
    configure(driver, "digits", "max", 2, 2, 0, False, True, False)
    driver.execute_script("const s=document.getElementById('scrub'); s.value='0'; s.dispatchEvent(new Event('input'))")
    driver.find_element("tag name", "body").send_keys("\ue014")
    assert text(driver, "scrub-text") == "2 of 9: y[0, 1]"
    assert_clean(driver)


def test_cli_errors(tmp_path):
    from numbacnn.cli import main

    r = CliRunner().invoke(main, ["explore", "pool", "--input", "nope", "-o", str(tmp_path / "p.html")])
    assert r.exit_code == 2 and "'--input'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["explore", "pool", "--window", "4", "-o", str(tmp_path / "p.html")])
    assert r.exit_code == 2 and "'--window'" in r.output
    assert not list(tmp_path.iterdir())
