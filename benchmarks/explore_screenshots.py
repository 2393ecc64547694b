"""The explorer's screenshots in docs/img/explore-*.png (not a test): each page written, opened in headless
Chromium, its controls set to a telling state, photographed.

    python benchmarks/explore_screenshots.py [--out docs/img] [--trace RUN.nctrace]

docs/img/explore-run.png came from a short LeNet run on Fashion-MNIST:
    numbacnn train-lenet --variant modern --momentum 0.9 --lr 0.03 --batch-size 64 --limit 6400 --epochs 2 \
        --trace fm.nctrace --trace-every 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

SHOTS = {  # file name -> (page, [(control, value)], scrub position)
    "explore-conv.png": ("conv", [("kernel", "sobel-x"), ("pad", 1), ("chan", "2 → 2, groups 2 (depthwise)")], 60),
    "explore-conv-backward.png": ("conv", [("kernel", "edge"), ("stride", 2), ("pass", "backward")], 20),
    "explore-pool.png": ("pool", [("p", 1), ("ceil", True)], 3),
    "explore-pool-backward.png": ("pool", [("mode", "avg"), ("k", 3), ("p", 1), ("pass", "backward")], 7),
    "explore-sgd.png": ("sgd", [], 4),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    ap.add_argument("--trace", default=None, help="a model trace folder: adds explore-run.png")
    args = ap.parse_args()
    if args.trace:
        SHOTS["explore-run.png"] = ("run", [("kind", "grad")], 12)
    import numbacnn.explore as explore
    from explore_browser import open_page, set_control, start_browser

    folder = tempfile.mkdtemp()
    pages = {}
    driver = start_browser(1360, 900)
    try:
        for name, (what, controls, at) in SHOTS.items():
            if what not in pages:
                page = explore.run(args.trace) if what == "run" else getattr(explore, what)()
                pages[what] = page.save(os.path.join(folder, f"{what}.html"))
            open_page(driver, pages[what])
            for cid, value in controls:
                set_control(driver, cid, value)
            driver.execute_script("const s=document.getElementById('scrub'); s.value=String(arguments[0]);"
                                  "s.dispatchEvent(new Event('input'))", at)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1360, min(height + 90, 1500))
            assert driver.execute_script("return window.NC_ERRORS") == []
            driver.save_screenshot(os.path.join(args.out, name))
            print("wrote", os.path.join(args.out, name))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
