"""numbacnn.explore.page without a browser: numbers survive the trip into the page exactly (float32) or as stated
(6 digits, 8 bits), the page embeds nothing that fetches, shows itself inline in Jupyter, and is written
atomically."""
import html as _html
import re

import numpy as np

from numbacnn.explore.page import Page, build, f32, g6, js
from numbacnn.explore.run_page import q8


def test_f32_is_exact_and_short():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(500).astype(np.float32), np.float32([0, -0.0, 1, -3, 1 / 9, 3e38, 1e-40])])
    text = str(f32(a))
    back = np.array([float(v) for v in text[1:-1].split(",")], np.float32)
    assert np.array_equal(back, a)
    assert text.startswith("[") and ",1," in text and ",-3," in text  # integers without a decimal point


def test_g6_and_non_finite():
    text = str(g6([1.23456789, np.nan, np.inf, -np.inf, -0.0, 1e-300]))
    assert text == "[1.23457,NaN,Infinity,-Infinity,0,1e-300]"


def test_q8_levels_and_exact_limits():
    a = np.linspace(-2, 3, 1000, dtype=np.float32)
    q = q8(a)
    import base64

    b = np.frombuffer(base64.b64decode(q["b"]), np.uint8)
    lo, hi = float(q["lo"]), float(q["hi"])
    assert np.float32(lo) == a.min() and np.float32(hi) == a.max()
    assert np.abs(lo + b * (hi - lo) / 255 - a).max() <= (hi - lo) / 510 * 1.0001
    assert q8(np.full(3, np.nan)) == {"none": True}


def test_js_literal_cannot_close_the_script():
    assert "</script>" not in js({"a": "</script><script>alert(1)</script>"})


def test_page_inline_and_saved(tmp_path):
    page = build("pool", "a title", "intro <b>x</b>", {"start": {}})
    assert isinstance(page, Page) and page.nbytes == len(page.html.encode())
    inline = page._repr_html_()
    assert inline.startswith("<iframe srcdoc=\"") and "<script" not in inline  # escaped inside srcdoc
    assert _html.unescape(re.search(r'srcdoc="([^"]*)"', inline).group(1)) == page.html
    out = page.save(tmp_path / "p.html")
    assert (tmp_path / "p.html").read_text() == page.html and out == tmp_path / "p.html"
    assert [p.name for p in tmp_path.iterdir()] == ["p.html"]  # no temporary file left
