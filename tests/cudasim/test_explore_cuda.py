"""`explore cuda` (numbacnn.explore.cuda_page): the page holds what the observer saw the real CUDA conv kernels do,
and shows it: checked against an independent observation, then in headless Chromium (skips without it)."""
import json
import os
import sys

import numpy as np
import pytest

import numbacnn as nc
from numbacnn import scenarios
from numbacnn.cuda import config
from numbacnn.trace.cuda_observe import observe

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

pytestmark = pytest.mark.cudasim


@pytest.fixture(scope="module")
def page():
    from numbacnn import explore

    return explore.cuda("checker", "sobel-x", 2)


def _observed(iname, kname, kernel, size):
    x = scenarios.preset_input(iname).astype(np.float32)[None, None]
    w = scenarios.parse_kernel(kname).astype(np.float32)[None, None]
    with config.override(threads_per_block=size if kernel == 1 else 16, tile=size if kernel == 2 else 4):
        with observe() as run:
            y = nc.conv2d(x, w, device="cudasim", kernel=kernel)
    return run, y


def test_the_page_holds_what_an_independent_observation_sees():
    from numbacnn.explore.cuda_page import _run

    for kernel, size in ((1, 8), (2, 2)):
        run, y = _observed("d2l-edge", "edge", kernel, size)
        block, thread = run.writers(y)
        x = scenarios.preset_input("d2l-edge").astype(np.float32)[None, None]
        w = scenarios.parse_kernel("edge").astype(np.float32)[None, None]
        data = _run(x, w, kernel, size)
        launch = run.launches[0]
        bid = (block[0, 0, ..., 0] + launch.grid[0] * (block[0, 0, ..., 1] + launch.grid[1] * block[0, 0, ..., 2]))
        tid = thread[0, 0, ..., 0] + launch.block[0] * thread[0, 0, ..., 1]
        writer = np.array(json.loads(str(data["writer"]))).reshape(bid.shape + (2,))
        assert np.array_equal(writer[..., 0], bid) and np.array_equal(writer[..., 1], tid)
        counts = run.counts()
        assert data["totals"] == {k: counts[k] for k in data["totals"]}
        assert data["races"] == 0 and data["oob"] == 0


def test_the_page_shows_threads_and_counts_in_a_browser(page, tmp_path):
    from explore_browser import assert_clean, assert_offline_html, hover, open_page, set_control, start_browser, \
        text

    path = tmp_path / "cuda.html"
    page.save(path)
    assert_offline_html(page.html)
    driver = start_browser()
    try:
        open_page(driver, path)
        for kernel, size in ((1, 8), (1, 16), (2, 2), (2, 4)):
            set_control(driver, "cuda", str(kernel))
            set_control(driver, "bsize", str(size))
            run, y = _observed("checker", "sobel-x", kernel, size)
            launch = run.launches[0]
            block, thread = run.writers(y)
            assert text(driver, "launch").startswith(f"{launch.name}: grid {tuple(launch.grid)}".replace(",)", ")"))
            # the last frame: the last block writes; its cells show the threadIdx that wrote them
            driver.execute_script("const s = document.getElementById('scrub'); s.value = s.max; "
                                  "s.dispatchEvent(new Event('input'))")
            cells = driver.execute_script(
                "return Array.from(document.querySelectorAll('td[data-g=\"y\"] b')).map(b => "
                "[Number(b.parentNode.dataset.i), Number(b.parentNode.dataset.j), b.textContent])")
            assert cells, "the last frame writes outputs"
            for i, j, label in cells:
                tx, ty = thread[0, 0, i, j, :2]
                assert label == (f"{tx},{ty}" if kernel == 2 else f"{tx}")
            # hover one output: the thread that wrote it and its counts, as observed
            i, j = 2, 3
            hover(driver, "y", i, j)
            shown = text(driver, "thread")
            b, t = tuple(int(v) for v in block[0, 0, i, j]), tuple(int(v) for v in thread[0, 0, i, j])
            assert f"blockIdx {b}" in shown and f"threadIdx {t}" in shown
            per_thread = launch.per_thread()
            k = int((b[0] + launch.grid[0] * (b[1] + launch.grid[1] * b[2])) * np.prod(launch.block)
                    + t[0] + launch.block[0] * t[1])
            for name, v in per_thread.items():
                assert f"{int(v[k])} {name}" in shown
            assert f"{run.counts()['global reads']:,} global reads" in text(driver, "totals")
        assert_clean(driver)
    finally:
        driver.quit()
