"""viz draws what the traces hold: frame counts, the numbers in the text artists, every output format."""
import shutil
import subprocess

import numpy as np
import pytest

from numbacnn import scenarios, viz
from numbacnn.trace import trace_conv2d, trace_pool2d
from numbacnn.viz.style import fmt

DPI = 40  # tiny figures: fast tests


@pytest.fixture(scope="module")
def book():
    X = scenarios.book_image()
    K = np.array([[1.0, -1.0]], np.float32)
    return X[None, None], K[None, None]


@pytest.fixture(scope="module")
def conv_trace(book):
    return trace_conv2d(*book)


@pytest.fixture(scope="module")
def conv_anim(conv_trace):
    return viz.conv(conv_trace, dpi=DPI)


def texts(grid):
    return grid.drawn().tolist()


def formatted(a, digits=2):
    return np.vectorize(lambda v: fmt(v, digits), otypes=[object])(np.asarray(a)).tolist()


def test_conv_has_one_frame_per_window(conv_trace, conv_anim):
    assert len(conv_trace) == 6 * 7
    assert len(conv_anim) == len(conv_trace)


@pytest.mark.parametrize("m", [0, 1, 20, 41])
def test_conv_frame_draws_the_traced_numbers(conv_trace, conv_anim, m):
    t = conv_trace
    conv_anim.show(m)
    row = conv_anim.artists["rows"][0]
    assert texts(row["ga"]) == formatted(t.window[m, 0])
    assert texts(row["gb"]) == formatted(t.kernel[0, 0])
    assert texts(row["gp"]) == formatted(t.products[m, 0])
    assert row["sum"].get_text() == f"Σ = {fmt(t.result[m], 3)}"
    # the output map holds the kernel's values up to this window, nothing after it
    out = conv_anim.artists["results"][0]["grid"]
    drawn = out.drawn()
    order = np.arange(len(t)).reshape(6, 7)
    assert all(drawn[i, j] == (fmt(t.out[0, 0, i, j]) if order[i, j] <= m else "")
               for i in range(6) for j in range(7))
    # the highlighted cells are the window the trace read
    n, o, i, j = t.pos[m]
    cells = {tuple(p.get_xy()) for p in row["patches"]}
    assert cells == {(c - 0.5, r - 0.5) for r in t.rows[m] for c in t.cols[m]}
    assert f"y[{i}, {j}]" in conv_anim.artists["caption"].get_text()


def test_blitted_frames_equal_full_redraws(conv_anim):
    fast = conv_anim.frames()
    for m in (0, 17, len(conv_anim) - 1):
        assert np.array_equal(fast[m], conv_anim.frame(m))


def test_conv_padding_stride_dilation_marks_padding(book):
    x, _ = book
    w = scenarios.parse_kernel("sobel-x")[None, None]
    t = trace_conv2d(x, w, stride=2, padding=1, dilation=(1, 2))
    anim = viz.conv(t, dpi=DPI)
    assert len(anim) == len(t) == t.out.shape[2] * t.out.shape[3]
    src = anim.artists["rows"][0]["src_grid"]
    assert src.shape == (8, 10) and src.padding.sum() == 8 * 10 - 6 * 8
    for m in range(len(t)):
        anim.show(m)
        ga = anim.artists["rows"][0]["ga"]
        hatched = np.vectorize(lambda r: r.get_visible())(ga.cell_hatch)
        assert np.array_equal(hatched, t.pad[m, 0])
        assert texts(ga) == formatted(t.window[m, 0])


def test_conv_flip_shows_both_kernels(book):
    x, _ = book
    w = np.array([[[[1.0, 2.0], [0.0, -1.0]]]], np.float32)
    t, f = trace_conv2d(x, w), trace_conv2d(x, w, flip=True)
    anim = viz.conv(t, flipped=f, dpi=DPI)
    assert len(anim) == len(t)
    anim.show(5)
    rows = anim.artists["rows"]
    assert texts(rows[0]["gb"]) == formatted(w[0, 0])
    assert texts(rows[1]["gb"]) == formatted(w[0, 0, ::-1, ::-1])
    assert rows[1]["sum"].get_text() == f"Σ = {fmt(f.result[5], 3)}"


def test_conv_channels_sum_over_input_channels(book):
    x1, k = book
    x = np.concatenate([x1, x1 + 1], axis=1)
    w = np.stack([np.concatenate([k[0], k[0] + 1]), np.concatenate([k[0] + 1, k[0] + 2])])
    t = trace_conv2d(x, w, np.array([0.5, -1.0], np.float32))
    anim = viz.conv(t, dpi=DPI)
    assert len(anim) == 2 * 6 * 7
    m = 50
    anim.show(m)
    for c, row in enumerate(anim.artists["rows"]):
        assert texts(row["gp"]) == formatted(t.products[m, c])
    assert anim.artists["totals"].get_text().endswith(f"= {fmt(t.result[m], 3)}")


def test_conv_backward_frames_cover_both_gradients(book):
    x, w = book
    gy = np.random.default_rng(0).integers(-1, 3, size=(1, 1, 6, 7)).astype(np.float32)
    t = trace_conv2d(x, w, backward=True, grad_out=gy)
    anim = viz.conv(t, dpi=DPI)
    Mw, Mx = len(t.gw_pos), len(t.gx_pos)
    assert len(anim) == Mw + Mx == 2 + 48
    rows = anim.artists["rows"]
    anim.show(1)
    assert rows[0]["sum"].get_text() == f"Σ = {fmt(t.gw_result[1], 3)}"
    assert texts(rows[0]["gb"]) == formatted(gy[0, 0])
    anim.show(Mw + 9)
    assert rows[1]["sum"].get_text() == f"Σ = {fmt(t.gx_result[9], 3)}"
    assert texts(rows[1]["gp"]) == formatted(t.gx_products[9, 0, ::-1, ::-1])


@pytest.mark.parametrize("mode", ["max", "avg", "min"])
def test_pool_frames_and_chosen_element(mode):
    x = (np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6) * 7 % 10)
    t = trace_pool2d(x, mode, 3, 2, 1)
    anim = viz.pool(t, dpi=DPI)
    assert len(anim) == len(t) == 9
    row = anim.artists["rows"][0]
    for m in (0, 4, 8):
        anim.show(m)
        assert texts(row["ga"]) == formatted(t.window[m])
        assert row["sum"].get_text().endswith(f"= {fmt(t.result[m], 3)}")
        if mode != "avg":
            p, q = t.chosen_pq[m]
            assert row["mark"].get_visible() and row["mark"].get_xy() == (q - 0.5, p - 0.5)


def test_pool_compare_side_by_side():
    x = (np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) * 5 % 7)
    ts = [trace_pool2d(x, m, 2) for m in ("max", "avg", "min")]
    anim = viz.pool(*ts, dpi=DPI)
    assert len(anim) == 4 and len(anim.artists["results"]) == 3
    anim.show(3)
    for t, res in zip(ts, anim.artists["results"]):
        assert res["grid"].drawn()[1, 1] == fmt(t.out[0, 0, 1, 1])


def test_learn_kernel_frames_are_iterations():
    rec = scenarios.learn_kernel(steps=4)
    anim = viz.learn_kernel(rec, dpi=DPI)
    assert len(anim) == 4
    for k in range(4):
        anim.show(k)
        assert texts(anim.artists["kernel"]) == formatted(rec.kernels[k], 3)
        assert texts(anim.artists["prediction"]) == formatted(rec.predictions[k])
        assert f"loss = {rec.losses[k]:.4g}" in anim.artists["caption"].get_text()


def test_sgd_frames_are_steps_and_numbers_match():
    run = scenarios.sgd_paths("quadratic", 5)
    anim = viz.sgd_paths(run, dpi=DPI)
    assert len(anim) == 5
    anim.show(2)
    for pan in anim.artists["panels"]:
        path = pan["path"]
        text = pan["numbers"].get_text()
        assert f"g = ({fmt(path.grads[2][0], 3)}, {fmt(path.grads[2][1], 3)})" in text
        assert f"Δ = ({fmt(path.updates[2][0], 3)}, {fmt(path.updates[2][1], 3)})" in text
        start, end = pan["arrows"]["update"]._posA_posB
        assert np.allclose(end, path.positions[3])


@pytest.fixture(scope="module")
def small_anim():
    return viz.learn_kernel(scenarios.learn_kernel(steps=3), dpi=DPI)


def test_save_gif_png_html(small_anim, tmp_path):
    from PIL import Image

    gif = small_anim.save(tmp_path / "a.gif", fps=4)
    with Image.open(gif) as im:
        assert im.n_frames == 3
    png = small_anim.save(tmp_path / "a.png")
    with Image.open(png) as im:
        assert im.format == "PNG"
    html = small_anim.save(tmp_path / "a.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64") == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_plays_inline_in_jupyter(small_anim):
    html = small_anim._repr_html_()
    assert "<script" in html and html.count("data:image/png;base64") == 3


def test_save_errors_name_the_path(small_anim, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="xyz"):
        small_anim.save(tmp_path / "a.xyz")
    with pytest.raises(viz.SaveError, match="does not exist"):
        small_anim.save(tmp_path / "missing" / "a.gif")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(viz.SaveError, match="ffmpeg"):
        small_anim.save(tmp_path / "a.mp4")


def test_mp4_pipes_every_frame_to_ffmpeg(small_anim, tmp_path, monkeypatch):
    """A stand-in ffmpeg that stores its stdin: the raw RGB frames arrive whole and land under the final name."""
    import os

    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor last; do :; done\ncat > "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = small_anim.save(tmp_path / "a.mp4")
    h, w = small_anim.frame(0).shape[:2]
    assert out.stat().st_size == len(small_anim) * h * w * 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_save_mp4(small_anim, tmp_path):
    """The real ffmpeg: an H.264 file with one video frame per animation frame (odd sizes padded to even)."""
    out = small_anim.save(tmp_path / "a.mp4")
    assert out.stat().st_size > 0
    if shutil.which("ffprobe"):
        info = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                               "stream=codec_name,nb_read_frames,width,height", "-of", "csv=p=0", str(out)],
                              capture_output=True, text=True, check=True).stdout.strip().split(",")
        h, w = small_anim.frame(0).shape[:2]
        assert info[0] == "h264" and int(info[-1]) == len(small_anim)
        assert (int(info[1]), int(info[2])) == (w + w % 2, h + h % 2)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed")
def test_html_plays_in_headless_chromium_without_script_errors(small_anim, tmp_path):
    page = small_anim.save(tmp_path / "a.html")
    # the page reports script errors into the DOM; --dump-dom prints the DOM after the scripts ran
    text = page.read_text().replace("<body>", "<body><script>window.onerror=function(m){document.title='JSERROR '"
                                                "+m;};</script>", 1)
    page.write_text(text)
    proc = subprocess.run([_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<title>JSERROR" not in proc.stdout, proc.stdout.split("</title>")[0][-500:]
    assert f"<title>{small_anim.title}" in proc.stdout  # no script error renamed the page
    assert "anim" in proc.stdout  # matplotlib's player is in the DOM


def test_html_page_is_self_contained(small_anim, tmp_path):
    text = small_anim.save(tmp_path / "a.html").read_text()
    assert "https://" not in text and "http://" not in text
    assert 'class="fa' not in text


def test_sgd_diverging_run_still_renders():
    run = scenarios.sgd_paths("quadratic", 12, lr=2.0)
    assert np.abs(run["paths"][0].positions).max() > 1e8
    anim = viz.sgd_paths(run, dpi=30)
    frames = anim.frames()
    assert len(frames) == 12
    assert "off the plot" in anim.artists["panels"][0]["numbers"].get_text()


def test_frames_rendered_in_forked_workers_equal_one_process(conv_anim):
    one = conv_anim.frames(workers=1)
    two = conv_anim.frames(workers=3)
    assert one.shape == two.shape == (len(conv_anim),) + one.shape[1:]
    assert np.array_equal(one, two)


def test_a_failing_worker_falls_back_to_rendering_here(conv_anim, monkeypatch):
    import os

    parent = os.getpid()
    real = type(conv_anim)._render

    def render(self, start, *args, **kw):
        if os.getpid() != parent:
            raise RuntimeError("worker dies")
        return real(self, start, *args, **kw)

    monkeypatch.setattr(type(conv_anim), "_render", render)
    calls = []
    frames = conv_anim.frames(progress=calls.append, workers=2)
    monkeypatch.undo()
    assert sum(calls) == len(conv_anim)
    assert np.array_equal(frames, conv_anim.frames(workers=1))


def test_bad_worker_count_is_rejected(conv_anim):
    with pytest.raises(ValueError, match="workers"):
        conv_anim.frames(workers=0)


def test_glyph_cache_draws_the_same_pixels_as_matplotlib(conv_trace):
    """viz._agg pastes cached glyph bitmaps; the frames equal those of the stock Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from numbacnn.viz import _agg

    cached = viz.conv(conv_trace, dpi=72)
    assert type(cached.fig.canvas) is _agg.CANVAS
    stock = viz.conv(conv_trace, dpi=72)
    FigureCanvasAgg(stock.fig)
    assert np.array_equal(cached.frames(), stock.frames())
    if _agg.CANVAS is not FigureCanvasAgg:  # the cache was used, and pays: fewer glyphs than drawn
        assert 0 < len(cached.fig.canvas.renderer._glyphs) < 2000


def test_speedups_off_draws_the_same_pixels_on_matplotlibs_canvas(conv_trace, monkeypatch):
    """NUMBACNN_SPEEDUPS=0: the stock FigureCanvasAgg, every frame rendered here; the frames are identical."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fast = viz.conv(conv_trace, dpi=DPI).frames(workers=2)
    monkeypatch.setenv("NUMBACNN_SPEEDUPS", "0")
    plain = viz.conv(conv_trace, dpi=DPI)
    assert type(plain.fig.canvas) is FigureCanvasAgg
    assert np.array_equal(plain.frames(workers=2), fast)


def test_forked_child_forgets_cached_fonts(conv_trace):
    """FT2Font objects read their file through an offset shared across fork: a child must not reuse them."""
    import os

    from numbacnn.viz import _agg

    anim = viz.conv(conv_trace, dpi=DPI)
    anim.frames()
    renderer = anim.fig.canvas.get_renderer()
    if _agg.CANVAS is not _agg.GlyphCachingCanvas:
        pytest.skip("stock canvas: nothing cached")
    assert renderer._layouts
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not renderer._layouts and not renderer._glyphs else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert renderer._layouts  # the parent keeps its own
