"""`explore sgd` (numbacnn.explore.sgd_page): plain SGD, momentum and Nesterov momentum on the 2-D loss surfaces
of `numbacnn animate sgd` (numbacnn.scenarios.SURFACES), every step taken by numbacnn.optim.sgd, for every
combination of learning rate, momentum, dampening, weight decay and maximize on the grids below.

Per path (steps k = 0 … S − 1): positions p_k (S + 1, 2), grads g_k = ∇f(p_k) (S, 2), buffers b_k after step k
(S, 2; zeros without momentum), updates p_{k+1} − p_k (S, 2), losses f(p_k) (S + 1,). Stored rounded to 6
significant digits (the page says so).
"""
from __future__ import annotations

import numpy as np

from .page import build, g6

GRIDS = {"quadratic": dict(lr=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55), steps=20),
         "rosenbrock": dict(lr=(2.5e-4, 5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3), steps=80)}
MOMENTA = (0.3, 0.6, 0.8, 0.9)
DAMPENINGS = (0.0, 0.5)
WEIGHT_DECAYS = (0.0, 0.1)
D2L = [("12.4 Stochastic gradient descent", "chapter_optimization/sgd.html"),
       ("12.6 Momentum", "chapter_optimization/momentum.html")]


def _k(v) -> str:
    """A number as JavaScript's String(v) writes it (the page builds its keys from the controls' values)."""
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def run_path(surface, steps, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False) -> dict | str:
    """``steps`` steps of numbacnn.optim.sgd on the 2-vector (x, y) from the surface's start; the error message
    when numbacnn refuses the hyperparameters (e.g. Nesterov with dampening)."""
    from .. import scenarios

    try:
        path = scenarios.sgd_path(surface, steps, lr=lr, momentum=momentum, dampening=dampening,
                                  weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
    except ValueError as exc:
        return str(exc)
    return {"p": g6(path.positions), "g": g6(path.grads), "b": g6(path.buffers), "d": g6(path.updates),
            "f": g6(path.losses)}


def _contours_png(surface) -> str:
    """The surface's contour lines (the levels of numbacnn.viz.sgd) as a PNG data URI filling the plot box."""
    import base64
    import io

    from matplotlib.figure import Figure

    from .. import scenarios

    s = scenarios.SURFACES[surface]
    x0, x1, y0, y1 = s["box"]
    gx, gy = np.meshgrid(np.linspace(x0, x1, 161), np.linspace(y0, y1, 121))
    gz = s["f"](gx, gy)
    levels = np.unique(np.quantile(gz, np.linspace(0.01, 0.97, 14) ** 2))
    fig = Figure(figsize=(3.8, 3.0), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.contour(gx, gy, gz, levels=levels, colors="#bbbbbb", linewidths=0.7)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sgd_data(start: dict) -> dict:
    from .. import scenarios

    data = {"surfaces": {}, "momenta": MOMENTA, "dampenings": DAMPENINGS, "wds": WEIGHT_DECAYS, "start": start}
    for name, grid in GRIDS.items():
        s = scenarios.SURFACES[name]
        paths = {}
        for lr in grid["lr"]:
            for wd in WEIGHT_DECAYS:
                for mx in (0, 1):
                    common = dict(lr=lr, weight_decay=wd, maximize=bool(mx))
                    paths[f"sgd|{_k(lr)}|0|0|{_k(wd)}|{mx}"] = run_path(name, grid["steps"], **common)
                    for mom in MOMENTA:
                        for damp in DAMPENINGS:
                            paths[f"momentum|{_k(lr)}|{_k(mom)}|{_k(damp)}|{_k(wd)}|{mx}"] = run_path(
                                name, grid["steps"], momentum=mom, dampening=damp, **common)
                            paths[f"nesterov|{_k(lr)}|{_k(mom)}|{_k(damp)}|{_k(wd)}|{mx}"] = run_path(
                                name, grid["steps"], momentum=mom, dampening=damp, nesterov=True, **common) \
                                if damp == 0 else _nesterov_error(lr, mom, damp, wd, mx)
        data["surfaces"][name] = {"formula": s["formula"], "box": s["box"], "minimum": s["minimum"],
                                  "start": s["start"], "steps": grid["steps"], "lrs": grid["lr"],
                                  "lr0": s["lr"], "mom0": s["momentum"], "png": _contours_png(name), "paths": paths}
    return data


def _nesterov_error(lr, mom, damp, wd, mx) -> str:
    """numbacnn's own message for Nesterov with dampening (one real call, refused before any step)."""
    from ..optim import sgd

    try:
        sgd([np.zeros(2)], [np.zeros(2)], [None], lr=lr, momentum=mom, dampening=damp, weight_decay=wd,
            nesterov=True, maximize=bool(mx))
    except ValueError as exc:
        return str(exc)
    raise AssertionError("numbacnn.optim.sgd accepted Nesterov momentum with dampening")


def page(surface="quadratic", *, lr=None, momentum=None, dampening=0.0, weight_decay=0.0, maximize=False):
    """The SGD explorer (a numbacnn.explore.page.Page); the keywords set the controls' starting values (None: the
    surface's defaults of `animate sgd`)."""
    from .. import scenarios

    if surface not in GRIDS:
        raise ValueError(f"surface must be one of {', '.join(GRIDS)}, got {surface!r}")
    lr = scenarios.SURFACES[surface]["lr"] if lr is None else lr
    momentum = scenarios.SURFACES[surface]["momentum"] if momentum is None else momentum
    for name, value, allowed in (("lr", lr, GRIDS[surface]["lr"]), ("momentum", momentum, MOMENTA),
                                 ("dampening", dampening, DAMPENINGS), ("weight_decay", weight_decay, WEIGHT_DECAYS)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))} on this page, got {value!r}")
    start = dict(surface=surface, lr=lr, momentum=momentum, dampening=dampening, wd=weight_decay, maximize=int(maximize))
    links = " · ".join(f'<a href="https://d2l.ai/{u}">D2L {t}</a>' for t, u in D2L)
    intro = ("Three optimizers start from the same point with the same learning rate: <b>plain SGD</b> steps "
             "against the gradient; <b>momentum</b> keeps a running sum of past gradients (the buffer b) and steps "
             "along it, so it speeds up along a long valley and damps the zig-zag across it; <b>Nesterov</b> steps "
             "along g + μ·b, a look-ahead. Every step is numbacnn.optim.sgd (PyTorch's formula: maximize, then "
             "weight decay, then the buffer, then the update). Scrub the steps; the numbers panel shows what sgd "
             f"computed (rounded to 6 significant digits when the page was written). {links}")
    return build("sgd", "numbacnn explore sgd: plain SGD, momentum and Nesterov", intro, sgd_data(start))
