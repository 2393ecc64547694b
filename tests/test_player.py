"""The inline player (Animation._repr_html_, what Jupyter shows) is self-contained and its controls work offline."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from numbacnn import scenarios, viz

DPI = 40


@pytest.fixture(scope="module")
def anim():
    return viz.learn_kernel(scenarios.learn_kernel(steps=3), dpi=DPI)


@pytest.fixture(scope="module")
def markup(anim):
    return anim._repr_html_()


def _without_frames(html):
    """The markup with the embedded PNG payloads cut out (base64 text may spell "cdn" or "http" by chance)."""
    return re.sub(r'"data:image/png;base64,[A-Za-z0-9+/=\\\n]*"', '"data:"', html)


def test_inline_player_references_no_external_url(markup):
    assert "://" not in markup  # never in base64 or in a data: URI
    rest = _without_frames(markup)
    assert rest.count('"data:"') == 3
    for word in ("http", "cdn", "font-awesome", 'class="fa', "<link"):
        assert word not in rest, word


def test_inline_player_buttons_have_visible_labels(markup):
    labels = re.findall(r"<button[^>]*>(.*?)</button>", markup, re.S)
    assert len(labels) == 9
    assert all(label.strip() for label in labels), labels


def test_to_jshtml_checks_fps(anim):
    with pytest.raises(ValueError, match="fps"):
        anim.to_jshtml(fps=0)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


# Runs after the player's own setTimeout(0) created the JavaScript Animation; clicks the buttons as a learner
# would and writes the frame shown after each click into the page title ("RESULT ..."), or the first error.
_CLICKS = """
<script>
window.onerror = function(m) { document.title = 'JSERROR ' + m; };
setTimeout(function() {
  try {
    var a = window['anim' + ID], img = document.getElementById('_anim_img' + ID);
    var slider = document.getElementById('_anim_slider' + ID);
    var shown = function() {
      var k = a.frames.findIndex(function(f) { return f.src === img.src; });
      return k + '/' + slider.value;
    };
    var click = function(title) { document.querySelector('button[title="' + title + '"]').click(); return shown(); };
    var seen = [shown(), click('Next frame'), click('Next frame'), click('Previous frame'), click('Last frame'),
                click('First frame')];
    var nets = performance.getEntriesByType('resource').filter(function(e) { return !e.name.startsWith('data:'); });
    click('Play');
    setTimeout(function() {
      seen.push(shown());
      click('Pause');
      document.title = 'RESULT ' + seen.join(' ') + ' net=' + nets.length + ' n=' + a.frames.length;
    }, 1300);
  } catch (e) { document.title = 'JSERROR ' + e; }
}, 50);
</script>
"""


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed")
def test_inline_player_controls_work_in_headless_chromium(markup, tmp_path):
    """The markup as a notebook holds it (a fragment in a page with no stylesheet), offline, in a real browser."""
    uid = re.search(r'id="_anim_img(\w+)"', markup).group(1)
    page = tmp_path / "notebook_cell.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>cell</title></head><body>\n"
                    + markup + _CLICKS.replace("ID", repr(uid)) + "</body></html>", encoding="utf-8")
    proc = subprocess.run([_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--proxy-server=127.0.0.1:9",  # offline: any request to the network would fail
                           "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", proc.stdout, re.S).group(1)
    assert title.startswith("RESULT "), title
    seen = title.split()[1:]
    # frame index shown / slider position, after: load, next, next, previous, last, first
    assert seen[:6] == ["0/0", "1/1", "2/2", "1/1", "2/2", "0/0"], title
    played = int(seen[6].split("/")[0])  # Play at 2 frames per second for 1.3 s (it loops over 3 frames)
    assert played in (1, 2), title
    assert "net=0" in seen and "n=3" in seen, title


def test_frames_differ(anim):
    """The clicks above can tell frames apart only if the frames differ."""
    a, b, c = (anim.frame(i) for i in range(3))
    assert not np.array_equal(a, b) and not np.array_equal(b, c)
