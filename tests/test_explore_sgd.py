"""explore sgd in a real headless browser: every control moved, the numbers each panel shows equal the steps of
numbacnn.optim.sgd (run here again, step by step), numbacnn's refusal of Nesterov with dampening is shown, nothing
is fetched and no script error occurs."""
import numpy as np
import pytest
from click.testing import CliRunner
from explore_browser import assert_clean, assert_offline_html, browser_on, set_control, text, write_page

from numbacnn import scenarios
from numbacnn.optim import sgd
from numbacnn.viz import style


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    return write_page(tmp_path_factory, ["sgd"], "sgd.html")


@pytest.fixture(scope="module")
def driver(page_path):
    yield from browser_on(page_path)


def expected(surface, k, **hyper):
    """p_k, f(p_k), g_k, b_k, p_{k+1} - p_k, p_{k+1} by numbacnn.optim.sgd."""
    s = scenarios.SURFACES[surface]
    p = np.array(s["start"], np.float64)
    bufs = [None]
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(k + 1):
            g = np.asarray(s["grad"](*p), np.float64)
            before = p.copy()
            sgd([p], [g], bufs, **hyper)
    b = np.zeros(2) if bufs[0] is None else bufs[0]
    return {"p": before, "f": np.array([s["f"](*before)]), "g": g, "b": b, "d": p - before, "q": p}


def shown(driver, variant):
    spans = driver.execute_script("""
        return Array.from(document.querySelectorAll('#panel-' + arguments[0] + ' span.num')).map(
            s => [s.dataset.n, s.dataset.v, s.textContent]);""", variant)
    out = {}
    for name, v, txt in spans:
        assert txt == style.fmt(float(v), 4), (name, v, txt)  # the page formats as the animations do
        out.setdefault(name.rstrip("01"), []).append(float(v))  # "NaN" and "Infinity" too
    return {k: np.array(v) for k, v in out.items()}


CASES = [("quadratic", 0.3, 0.6, 0.0, 0.0, True, False, 0),
         ("quadratic", 0.1, 0.9, 0.5, 0.1, False, False, 7),
         ("quadratic", 0.55, 0.3, 0.0, 0.0, True, False, 19),    # plain SGD diverges (lr > 2 / 4)
         ("quadratic", 0.05, 0.8, 0.0, 0.1, True, True, 5),     # maximize: climbing
         ("rosenbrock", 1.5e-3, 0.9, 0.0, 0.0, True, False, 40),
         ("rosenbrock", 5e-4, 0.6, 0.5, 0.1, False, True, 79)]


def test_page_is_self_contained_and_small(page_path):
    html = page_path.read_text()
    assert_offline_html(html)
    assert len(html.encode()) < 8e6


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_numbers_equal_numbacnn_sgd(driver, case):
    surface, lr, mom, damp, wd, nesterov, maximize, k = case
    set_control(driver, "surface", surface)
    for cid, v in (("lr", lr), ("mom", mom), ("damp", damp), ("wd", wd), ("nesterov", nesterov),
                   ("maximize", maximize)):
        set_control(driver, cid, v)
    driver.execute_script("const s=document.getElementById('scrub'); s.value=String(arguments[0]);"
                          "s.dispatchEvent(new Event('input'))", k)
    assert text(driver, "scrub-text").startswith(f"k = {k} of")
    common = dict(lr=lr, weight_decay=wd, maximize=maximize)
    variants = {"sgd": dict(common), "momentum": dict(common, momentum=mom, dampening=damp)}
    if nesterov:
        variants["nesterov"] = dict(common, momentum=mom, dampening=damp, nesterov=True)
    panels = driver.execute_script("return Array.from(document.querySelectorAll('.sgdpanel')).map(p => p.id)")
    assert panels == [f"panel-{v}" for v in variants]
    for variant, hyper in variants.items():
        if variant == "nesterov" and damp:
            assert "requires" in text(driver, "panel-nesterov") and "dampening" in text(driver, "panel-nesterov")
            continue
        want, got = expected(surface, k, **hyper), shown(driver, variant)
        assert set(got) == {"p", "f", "g", "d", "q"} | ({"b"} if variant != "sgd" else set())
        for name, values in got.items():
            np.testing.assert_allclose(values, want[name], rtol=6e-6, atol=1e-300, equal_nan=True,  # stored to 6 significant digits
                                       err_msg=f"{variant} {name}")
    assert_clean(driver)


def test_keys_step_the_scrubber(driver):
    set_control(driver, "surface", "quadratic")
    driver.execute_script("const s=document.getElementById('scrub'); s.value='3'; s.dispatchEvent(new Event('input'))")
    driver.find_element("tag name", "body").send_keys("\ue014")
    assert text(driver, "scrub-text") == "k = 4 of 20 steps"
    assert_clean(driver)


def test_cli(tmp_path):
    from numbacnn.cli import main

    r = CliRunner().invoke(main, ["explore", "sgd", "--surface", "bowl", "-o", str(tmp_path / "s.html")])
    assert r.exit_code == 2 and "'--surface'" in r.output and "Traceback" not in r.output
    assert not list(tmp_path.iterdir())
