"""explore conv in a real headless browser: every control moved, the numbers on the page equal numbacnn.conv2d /
conv2d_backward (and PyTorch's, through the line the page offers to copy), window and gradient maps equal the
formula's, no request leaves the page, no script error."""
import numpy as np
import pytest
from click.testing import CliRunner
from explore_browser import (assert_clean, assert_offline_html, browser_on, grid, hover, marked, set_control, text,
                             write_page)

import numbacnn as nc
from numbacnn import scenarios
from numbacnn.viz import style

CHANS = {"1 → 1": (1, 1, 1), "2 → 1": (2, 1, 1), "2 → 2": (2, 2, 1), "2 → 2, groups 2 (depthwise)": (2, 2, 2)}


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    return write_page(tmp_path_factory, ["conv"], "conv.html")


@pytest.fixture(scope="module")
def driver(page_path):
    yield from browser_on(page_path)


def arrays(inp, ker, chan):
    X, K = scenarios.preset_input(inp), scenarios.parse_kernel(ker)
    C, O, G = CHANS[chan]
    x = np.stack([X + c for c in range(C)])[None].astype(np.float32)
    w = np.stack([np.stack([K + c + o for c in range(C // G)]) for o in range(O)]).astype(np.float32)
    return x, w, G


def configure(d, inp, ker, p, s, dil, flip, chan, back):
    for cid, v in (("input", inp), ("kernel", ker), ("pad", p), ("stride", s), ("dil", dil), ("flip", flip),
                   ("chan", chan), ("pass", "backward" if back else "forward")):
        set_control(d, cid, v)


def test_page_is_self_contained_and_small(page_path):
    html = page_path.read_text()
    assert_offline_html(html)
    assert len(html.encode()) < 8e6


# every control takes at least two values; the cases mix them
CASES = [("d2l-edge", "edge", 0, 1, 1, False, "1 → 1"),
         ("checker", "sobel-x", 1, 2, 1, True, "2 → 1"),
         ("digit", "laplacian", 2, 1, 2, False, "2 → 2"),
         ("digit", "blur", 1, 3, 1, True, "2 → 2, groups 2 (depthwise)"),
         ("d2l-edge", "sharpen", 2, 2, 2, False, "2 → 2, groups 2 (depthwise)"),
         ("checker", "identity", 0, 1, 2, True, "2 → 2"),
         ("d2l-edge", "sobel-y", 1, 1, 1, False, "2 → 1")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_forward_numbers_and_windows(driver, case):
    inp, ker, p, s, dil, flip, chan = case
    configure(driver, inp, ker, p, s, dil, flip, chan, False)
    x, w, G = arrays(inp, ker, chan)
    y = nc.conv2d(x, w, stride=s, padding=p, dilation=dil, groups=G, flip=flip)
    O, HO, WO = y.shape[1:]
    for o in range(O):
        vals, _, texts = grid(driver, f"y{o}")
        np.testing.assert_array_equal(vals, y[0, o])
        assert texts[(HO - 1, WO - 1)] == style.fmt(y[0, o, -1, -1], 2)
    # hover the last output cell of the last channel: its window and its arithmetic
    hover(driver, f"y{O - 1}", HO - 1, WO - 1)
    assert driver.execute_script("return document.getElementById('result').textContent") == style.fmt(
        y[0, O - 1, HO - 1, WO - 1], 3)
    KH, KW = w.shape[2:]
    rows = {(HO - 1) * s - p + a * dil for a in range(KH)}
    cols = {(WO - 1) * s - p + b * dil for b in range(KW)}
    Og, Cg = O // G, x.shape[1] // G
    for c in range(x.shape[1]):
        _, marks, _ = grid(driver, f"x{c}")
        expect = {(r + p, q + p) for r in rows for q in cols} if c // Cg == (O - 1) // Og else set()
        assert marked(marks, "win") == expect
    cap = text(driver, "caption")
    assert cap.count("·") == Cg * KH * KW
    # the PyTorch line the page offers computes the same numbers
    torch = pytest.importorskip("torch")
    line = text(driver, "torch").split("  #")[0]
    assert line.startswith("torch.nn.functional.conv2d(x, ")
    got = eval(line, {"torch": torch, "x": torch.from_numpy(x), "w": torch.from_numpy(w)})
    np.testing.assert_allclose(got.numpy(), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES[:5], ids=lambda c: "-".join(map(str, c)))
def test_backward_numbers_and_reach(driver, case):
    inp, ker, p, s, dil, flip, chan = case
    configure(driver, inp, ker, p, s, dil, flip, chan, True)
    x, w, G = arrays(inp, ker, chan)
    O = w.shape[0]
    gy = np.stack([grid(driver, f"gy{o}")[0] for o in range(O)])[None]
    np.testing.assert_array_equal(gy, np.random.default_rng(0).integers(-1, 3, size=gy.shape))
    gx, gw, _ = nc.conv2d_backward(gy, x, w, stride=s, padding=p, dilation=dil, groups=G, flip=flip)
    for c in range(x.shape[1]):
        np.testing.assert_array_equal(grid(driver, f"gx{c}")[0], gx[0, c])
    for o in range(O):
        for k in range(w.shape[1]):
            np.testing.assert_array_equal(grid(driver, f"gw{o}_{k}")[0], gw[o, k])
    # an input cell: the output gradients that reach it are those whose window covered it
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    h, wc = H // 2, W - 1
    hover(driver, "gx0", h, wc)
    HO, WO = gy.shape[2:]
    reach = {(i, j) for i in range(HO) for j in range(WO) for a in range(KH) for b in range(KW)
             if i * s - p + a * dil == h and j * s - p + b * dil == wc}
    _, marks, _ = grid(driver, "gy0")
    assert marked(marks, "reach") == reach
    assert driver.execute_script("return document.getElementById('result').textContent") == style.fmt(gx[0, 0, h, wc], 3)
    # a kernel tap: its gradient's terms
    hover(driver, "gw0_0", KH - 1, 0)
    assert driver.execute_script("return document.getElementById('result').textContent") == style.fmt(gw[0, 0, -1, 0], 3)


def test_scrubber_keys_and_play(driver):
    configure(driver, "d2l-edge", "edge", 0, 1, 1, False, "1 → 1", False)
    driver.execute_script("const s=document.getElementById('scrub'); s.value='0'; s.dispatchEvent(new Event('input'))")
    body = driver.find_element("tag name", "body")
    body.send_keys("\ue014")  # ArrowRight
    body.send_keys("\ue014")
    assert text(driver, "scrub-text").startswith("3 of 42: y[0][0, 2]")
    _, marks, _ = grid(driver, "y0")
    assert marked(marks, "cur") == {(0, 2)}
    body.send_keys("\ue012")  # ArrowLeft
    assert text(driver, "scrub-text").startswith("2 of 42")
    driver.execute_script("document.getElementById('scrub-play').click()")
    driver.implicitly_wait(0)
    import time

    for _ in range(50):  # played until the next frame shows (no time limit on the result)
        if not text(driver, "scrub-text").startswith("2 of"):
            break
        time.sleep(0.1)
    driver.execute_script("document.getElementById('scrub-play').click()")
    assert not text(driver, "scrub-text").startswith("2 of")
    assert_clean(driver)


def test_cli_errors(tmp_path):
    from numbacnn.cli import main

    r = CliRunner().invoke(main, ["explore", "conv", "-o", str(tmp_path / "nope" / "x.html")])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["explore", "conv", "--kernel", "1,2;3", "-o", str(tmp_path / "x.html")])
    assert r.exit_code == 2 and "'--kernel'" in r.output
    r = CliRunner().invoke(main, ["explore", "conv", "-o", str(tmp_path / "x.gif")])
    assert r.exit_code == 2 and ".html" in r.output
    assert not list(tmp_path.iterdir())


def test_custom_kernel_and_image(tmp_path):
    from PIL import Image

    from numbacnn.cli import main

    img = tmp_path / "pic.png"
    Image.fromarray((np.arange(48).reshape(6, 8) * 5).astype("uint8")).save(img)
    out = tmp_path / "c.html"
    r = CliRunner().invoke(main, ["explore", "conv", "--kernel", "1,0;0,-1", "--input", str(img), "--size", "6x8",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert '"custom":{"kh":2,"kw":2}' in html and '"pic":{"h":6,"w":8}' in html
    assert '"start":{"input":"pic","kernel":"custom"' in html
