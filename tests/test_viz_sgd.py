"""numbacnn.viz.sgd as a learner reads it: the step count and the marker agree, a diverging run's numbers stay on
the figure, no raw NumPy warnings, and the norms plot of ``sgd --trace`` keeps its labels and marker in view."""
import numpy as np
import pytest

from numbacnn import scenarios, viz

DPI = 40


def _inside(artist, fig):
    """The artist's drawn box lies within the figure (nothing clipped at its edges)."""
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return box.x0 >= page.x0 - 0.5 and box.x1 <= page.x1 + 0.5 and box.y0 >= page.y0 - 0.5 and box.y1 <= page.y1 + 0.5


@pytest.mark.filterwarnings("error")
def test_caption_and_loss_marker_count_the_same_step():
    """Frame k: the caption says step k (from p_k to p_k+1) and the loss dots sit at x = k, on f(p_k)."""
    run = scenarios.sgd_paths("quadratic", 20)
    anim = viz.sgd_paths(run, dpi=DPI)
    assert len(anim) == 20
    for k in (0, 7, 19):
        anim.show(k)
        caption = anim.artists["caption"].get_text()
        assert caption.startswith(f"step {k} (of 0 … 19): from p$_{{{k}}}$ to p$_{{{k + 1}}}$"), caption
        for pan in anim.artists["panels"]:
            assert pan["head"].get_xdata()[0] == pan["path"].positions[k][0]
        l_ax = anim.fig.axes[-1]
        dots = [line for line in l_ax.lines if line.get_marker() == "o"]
        assert len(dots) == 3
        for dot, path in zip(dots, (p["path"] for p in anim.artists["panels"])):
            assert list(dot.get_xdata()) == [k] and dot.get_ydata()[0] == path.losses[k]
    anim.close()


@pytest.mark.filterwarnings("error")
def test_diverging_run_warns_nothing_and_its_numbers_stay_on_the_figure():
    """Rosenbrock at lr 0.01 overflows float64 within a few steps: no RuntimeWarning, every panel's numbers (the
    rightmost, Nesterov's, included) inside the figure at every stage, and the overflow named."""
    run = scenarios.sgd_paths("rosenbrock", 12, lr=0.01)
    assert all(scenarios.diverged_at(p) is not None for p in run["paths"])
    assert all(np.isnan(p.positions[-1]).all() for p in run["paths"])
    anim = viz.sgd_paths(run, dpi=DPI)
    for k in (0, 3, 5, 11):
        anim.show(k)
        for pan in anim.artists["panels"]:
            assert _inside(pan["numbers"], anim.fig), (k, pan["path"].variant, pan["numbers"].get_text())
    nesterov = anim.artists["panels"][-1]["numbers"].get_text()
    assert "overflowed" in nesterov and "f(p) = nan" in nesterov
    anim.frames()  # every frame renders without a warning
    anim.close()


def test_diverged_at():
    ok = scenarios.sgd_paths("quadratic", 20)
    assert [scenarios.diverged_at(p) for p in ok["paths"]] == [None, None, None]
    bad = scenarios.sgd_paths("quadratic", 20, lr=0.6)  # plain SGD: y-curvature 4, lr > 2/4 grows
    assert scenarios.diverged_at(bad["paths"][0]) is not None


@pytest.mark.filterwarnings("error")
def test_huge_kernel_values_are_refused_without_a_cast_warning():
    with pytest.raises(ValueError, match="float32"):
        scenarios.parse_kernel("1e40,1")
    assert scenarios.parse_kernel("3e38,-1").dtype == np.float32


class _Trace:
    """Just what viz.sgd_trace reads: norms within one decade, so matplotlib labels minor ticks (2×10⁻¹)."""

    path = "fake.nctrace"
    hyperparameters = {"lr": 0.1}

    def __init__(self, momentum):
        self.steps = np.arange(12)
        self.momentum = momentum

    def param(self, name, kind, steps=None):
        n = len(self.steps) if steps is None else len(steps)
        base = {"grad": 0.3, "momentum_after": 0.5 if self.momentum else np.nan, "update": 0.06, "value": 1.0}
        wave = 1 + 0.5 * np.sin(np.arange(n))[:, None, None]
        return (base[kind] * wave * np.random.default_rng(0).standard_normal((n, 6, 5)) / 4).astype(np.float32)


@pytest.mark.parametrize("momentum", [False, True])
def test_trace_norms_keep_labels_legend_and_marker_in_view(momentum):
    anim = viz.sgd_trace(_Trace(momentum), "w", dpi=DPI)
    ax, fig = anim.artists["norms_ax"], anim.fig
    anim.show(11)  # the last step: where the old legend (upper right) covered the marker
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert ax.get_tightbbox(renderer).x0 >= 0  # the y tick labels and the y label are not clipped
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y0 >= ax.get_window_extent(renderer).y1 - 1  # above the plot, covering nothing in it
    assert list(anim.artists["mark"].get_xdata()) == [11, 11]
    norms = {k: np.sqrt(np.nansum(anim.record["arrays"][k][11].astype(np.float64) ** 2))
             for k in anim.artists["kinds"]}
    for dot, kind in zip(anim.artists["dots"], anim.artists["kinds"]):
        assert list(dot.get_xdata()) == [11] and np.isclose(dot.get_ydata()[0], norms[kind])
    anim.close()
