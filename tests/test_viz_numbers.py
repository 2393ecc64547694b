"""Numbers in cells stay readable: one format per grid, a minimum font, a larger figure or a colours-only note."""
import numpy as np
import pytest

from numbacnn import viz
from numbacnn.trace import trace_conv2d
from numbacnn.viz import style
from numbacnn.viz.style import fmt, number_format

DPI = 40


def image_like(n=12, seed=0):
    """What scenarios.load_image returns: float32 grey levels rounded to 2 decimals, with a 0.01 cell."""
    x = np.round(np.random.default_rng(seed).random((n, n)) * 0.9, 2).astype(np.float32)
    x[0, 0], x[0, 1] = 0.01, 0.02
    return x[None, None]


def test_fmt_keeps_float32_hundredths_fixed():
    assert fmt(np.float32(0.01)) == "0.01" and fmt(np.float32(-0.01)) == "-0.01"
    assert fmt(0.004) == "4.0e-03" and fmt(0.0) == "0" and fmt(3.0) == "3"


@pytest.mark.parametrize("values, expected", [
    ([np.float32(0.01), 0.53, -0.04], ["0.01", "0.53", "-0.04"]),
    ([0.003, 0.05], ["0.003", "0.05"]),
    ([1e-5, 3e-6, 0.0], ["1.0e-05", "3.0e-06", "0"]),
    ([16.19, 0.3], ["16.19", "0.3"]),
    ([1, -2, 0], ["1", "-2", "0"]),
])
def test_one_number_format_per_grid(values, expected):
    f = number_format(values)
    assert [f(v) for v in values] == expected


def conv_grids(anim):
    for art in anim.artists["rows"]:
        for key in ("src_grid", "ga", "gb", "gp"):
            if art.get(key) is not None:
                yield art[key]


def test_image_input_cells_are_readable_and_consistent():
    x = image_like()
    w = np.array([[[[1.0, -1.0]]]], np.float32)
    t = trace_conv2d(x, w)
    anim = viz.conv(t, dpi=DPI)
    assert anim.fig.get_size_inches()[1] > 3.9  # grown from 3.8 in so 12 rows of "0.53" fit
    anim.show(len(anim) - 1)
    for g in conv_grids(anim):
        assert g.texts is not None and g.fontsize >= style.MIN_CELL_FONT
        drawn = g.drawn().ravel()
        assert not any("e" in s for s in drawn)  # never 1.0e-02 beside 0.01
    src = anim.artists["rows"][0]["src_grid"]
    assert src.drawn()[0, 0] == "0.01"
    assert np.allclose(src.drawn().astype(float), x[0, 0], atol=0.005)  # the traced values, rounded
    out = anim.artists["results"][0]["grid"]
    assert not out.dropped and out.texts[0, 0].get_fontsize() >= style.MIN_CELL_FONT
    assert np.allclose(out.drawn().astype(float), t.out[0, 0], atol=0.005)
    assert anim.artists["note"] is None


def test_too_small_cells_show_colours_only_and_say_so():
    x = image_like()
    w = np.array([[[[1.0, -1.0]]]], np.float32)
    gy = np.random.default_rng(0).integers(-1, 3, size=(1, 1, 12, 11)).astype(np.float32)
    t = trace_conv2d(x, w, backward=True, grad_out=gy)
    anim = viz.conv(t, dpi=DPI, grad_out_source="seeded random integers from -1 to 2")
    row = anim.artists["rows"][0]
    assert row["gp"].dropped and (row["gp"].drawn() == "").all()  # 12x11 products of "-0.04": too small
    assert not row["gb"].dropped  # grad_out's one-digit integers still fit
    note = anim.artists["note"].get_text()
    assert "products" in note and "Colours only" in note
    for g in conv_grids(anim):
        assert g.dropped or g.texts is None or g.fontsize >= style.MIN_CELL_FONT
    footer = anim.artists["footer"].get_text()
    assert "∂L/∂y" in footer and "seeded random integers from -1 to 2" in footer


def test_backward_footer_describes_grad_out_from_its_values():
    x = image_like(4)
    w = np.array([[[[1.0, -1.0]]]], np.float32)
    gy = np.array([[[[2, -1, 0], [1, 1, -1], [0, 2, 1], [1, 0, 0]]]], np.float32)
    anim = viz.conv(trace_conv2d(x, w, backward=True, grad_out=gy), dpi=DPI)
    assert "integers from -1 to 2" in anim.artists["footer"].get_text()
    assert anim.artists["note"] is None


def test_pool_compare_gives_its_one_input_the_whole_column():
    from numbacnn.trace import trace_pool2d

    x = image_like()
    anim = viz.pool(*[trace_pool2d(x, m, 2) for m in ("max", "avg", "min")], dpi=DPI)
    src = anim.artists["rows"][0]["src_grid"]
    assert not src.dropped and src.fontsize >= style.MIN_CELL_FONT and anim.artists["note"] is None
