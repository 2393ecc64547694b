"""Explorer latency (not a test): the time to write each page, and in headless Chromium the time from a control
change to the redrawn page (the change event, the redraw, style, layout and the next frame), 50th and 95th
percentile over many random control changes. Goal: p95 under 50 ms.

    python benchmarks/explore_latency.py [--changes 60] [--trace RUN.nctrace]

Needs selenium, chromium and chromedriver (as tests/test_explore*.py).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

# control id -> how to pick a new value in the page (JS that sets it and returns the event to fire)
CONTROLS = {
    "conv": ["input", "kernel", "pad", "stride", "dil", "flip", "chan", "pass", "scrub"],
    "pool": ["input", "mode", "k", "s", "p", "ceil", "cip", "pass", "scrub"],
    "sgd": ["surface", "lr", "mom", "damp", "wd", "nesterov", "maximize", "scrub"],
    "run": ["scrub", "kind", "example", "layer"],
}

CHANGE = """
const done = arguments[arguments.length - 1];
if (arguments[0] === 'layer') {  // the run page's layer column: click a random layer
  const bs = document.querySelectorAll('button[data-layer]'), t0 = performance.now();
  bs[Math.floor(Math.random() * bs.length)].click();
  requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
  return;
}
const el = document.getElementById(arguments[0]);
let ev = 'change';
if (el.tagName === 'SELECT') { el.selectedIndex = (el.selectedIndex + 1 + Math.floor(Math.random() * (el.options.length - 1))) % el.options.length; }
else if (el.type === 'checkbox') { el.checked = !el.checked; }
else { const n = Number(el.max) + 1; el.value = String(Math.floor(Math.random() * n)); ev = 'input'; }
const t0 = performance.now();
el.dispatchEvent(new Event(ev));
requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=60, help="control changes per page")
    ap.add_argument("--trace", default=None, help="a model trace folder: times the run page too")
    args = ap.parse_args()
    import numbacnn.explore as explore
    from explore_browser import start_browser

    explore.conv()  # compile the kernels first: the write times below are of a warm process
    random.seed(0)
    driver = start_browser()
    folder = tempfile.mkdtemp()
    print(f"{'page':6} {'write s':>8} {'MB':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    try:
        for name in ("conv", "pool", "sgd") + (("run",) if args.trace else ()):
            t0 = time.perf_counter()
            page = explore.run(args.trace) if name == "run" else getattr(explore, name)()
            path = page.save(os.path.join(folder, f"{name}.html"))
            write = time.perf_counter() - t0
            driver.get("file://" + path)
            times = []
            for _ in range(args.changes):
                times.append(driver.execute_async_script(CHANGE, random.choice(CONTROLS[name])))
            assert driver.execute_script("return window.NC_ERRORS") == []
            t = np.array(times)
            print(f"{name:6} {write:8.2f} {page.nbytes / 1e6:6.2f} {np.percentile(t, 50):7.1f} "
                  f"{np.percentile(t, 95):7.1f} {t.max():7.1f}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
