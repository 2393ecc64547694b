"""Headless Chromium for the explorer tests (tests/test_explore*.py): a driver, control setters, grid readers and
the offline / no-script-error checks. Skips where chromium, chromedriver or selenium is missing."""
import os
import re
import shutil

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)


def start_browser(width=1400, height=1000):
    webdriver = pytest.importorskip("selenium.webdriver")
    if not CHROMIUM or not DRIVER:
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def open_page(driver, path):
    driver.get("file://" + os.path.abspath(path))
    assert driver.execute_script("return typeof NC_DATA") == "object"


def set_control(driver, cid, value):
    """Set a select / checkbox / range (by its value; ranges by the value they show) and fire its events."""
    driver.execute_script("""
        const el = document.getElementById(arguments[0]), v = arguments[1];
        if (el.type === 'checkbox') el.checked = !!v;
        else if (el.type === 'range' && el.dataset.values) el.value = String(el.dataset.values.split(',').indexOf(String(v)));
        else el.value = String(v);
        if (el.type === 'range' && el.dataset.values && el.value === '-1') throw new Error('no such value ' + v);
        el.dispatchEvent(new Event(el.type === 'range' ? 'input' : 'change'));
    """, cid, value)


def grid(driver, name):
    """The grid ``name`` as (values float32 array with nan for padding cells, marks: dict (i, j) -> class)."""
    cells = driver.execute_script("""
        return Array.from(document.querySelectorAll('td[data-g="' + arguments[0] + '"]')).map(
            td => [Number(td.dataset.i), Number(td.dataset.j), td.dataset.v === undefined ? null : td.dataset.v,
                   td.className, td.textContent]);
    """, name)
    assert cells, f"no grid {name!r} on the page"
    rows, cols = max(c[0] for c in cells) + 1, max(c[1] for c in cells) + 1
    vals = np.full((rows, cols), np.nan, np.float32)
    marks, texts = {}, {}
    for i, j, v, cls, text in cells:
        if v is not None:
            vals[i, j] = np.float32(float(v))
        marks[(i, j)] = cls
        texts[(i, j)] = text
    return vals, marks, texts


def marked(marks, cls):
    return {k for k, v in marks.items() if cls in v.split()}


def hover(driver, name, i, j):
    driver.execute_script("""
        const td = document.querySelector('td[data-g="' + arguments[0] + '"][data-i="' + arguments[1] + '"][data-j="'
                                           + arguments[2] + '"]');
        td.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    """, name, i, j)


def text(driver, cid):
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", cid)


def assert_clean(driver):
    """No script error (window.onerror collector, browser log) and no request left the page."""
    assert driver.execute_script("return window.NC_ERRORS") == []
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe
    assert driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") == []


def assert_offline_html(html):
    """Nothing that would fetch: no <link>, @import or url() but to a fragment (#id); every src / href is empty
    (built by the script from embedded data), a fragment, a data: URI, or a plain <a> link to the book."""
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"""url\(\s*['"]?(?!#)""", html)
    for m in re.finditer(r"""\b(src|href)\s*=\s*["']([^"']*)""", html):
        value = m.group(2)
        ok = value == "" or value.startswith(("#", "data:")) or (
            m.group(1) == "href" and value.startswith("https://d2l.ai/") and html[:m.start()].endswith("<a "))
        assert ok, html[m.start() - 40:m.end() + 40]
    for m in re.finditer(r"https?://", html):
        assert html[:m.start()].endswith('<a href="'), html[m.start() - 40:m.start() + 40]


def write_page(tmp_path_factory, args, name):
    """Run ``numbacnn explore ARGS -o <tmp>/<name>`` through click; the page's path (which the command printed)."""
    from click.testing import CliRunner

    from numbacnn.cli import main

    path = tmp_path_factory.mktemp("explore") / name
    res = CliRunner().invoke(main, ["explore", *args, "-o", str(path)])
    assert res.exit_code == 0, res.output
    assert str(path) in res.output
    return path


def browser_on(path):
    """A browser with the page at ``path`` open, for a module fixture: ``yield from browser_on(path)``."""
    driver = start_browser()
    try:
        open_page(driver, path)
        yield driver
    finally:
        driver.quit()
