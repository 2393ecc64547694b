"""The sliding-window scene of conv and pool (numbacnn.viz._window): the window on its grid, equations, results.

Layout (one figure)::

    caption
    [source grid, window highlighted]  [A (op) B = P   Σ ...]  [result maps filling in]
    ... one equation row per input channel / pass ...

Builders (viz.conv, viz.pool) turn a trace into a ``Scene`` of plain per-frame arrays; ``render`` draws it once
and updates only the artists that change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import style
from ._anim import Animation, new_figure
from ._grid import FillGrid, Grid

NUMBERS_UP_TO = 16  # source / result grids with more rows or columns than this show colours only
MAX_SCALE = 1.6     # the figure grows up to this factor (wider, taller) so cell numbers stay readable


@dataclass
class Source:
    values: np.ndarray                 # (R, C) what is drawn, padding included
    padding: np.ndarray                # (R, C) bool
    title: str
    cells: np.ndarray                  # (F, T, 2) int: cells of the window per frame (row, col in this grid)
    active: np.ndarray                 # (F,) bool: the window is shown in this frame
    tick_labels: tuple | None = None   # (row labels, col labels) for the grid's axes, e.g. input indices
    scheme: dict | None = None         # colours (default: from the non-padding values)


@dataclass
class Equation:
    a: np.ndarray                      # (F, h, w) left operand (window values) per frame
    b: np.ndarray | None               # (F, h, w) right operand (kernel) per frame; None: the window alone
    p: np.ndarray | None               # (F, h, w) result of the elementwise op per frame
    a_pad: np.ndarray                  # (F, h, w) bool: padding entries of a
    titles: tuple                      # (a, b, p) titles
    op: str                            # "⊙" ...
    sums: list                         # (F,) text under p, e.g. "Σ = 3"
    active: np.ndarray                 # (F,) bool
    source: Source | None = None
    b_scheme: dict | None = None
    p_scheme: dict | None = None
    marks: np.ndarray | None = None    # (F, 2) int cell of a to outline (the chosen element), -1 for none
    a_scheme: dict | None = None


@dataclass
class Result:
    values: np.ndarray                 # (h, w) the final map (what the kernel wrote)
    written_at: np.ndarray             # (h, w) int: the frame that writes each cell (-1: never)
    title: str
    scheme: dict = field(default_factory=dict)


@dataclass
class Scene:
    title: str
    captions: list                     # (F,) str
    rows: list                         # [Equation]
    results: list                      # [Result]
    totals: list | None = None         # (F,) str under the equations (e.g. the sum over channels)
    name: str = "conv"
    width: float = 12.0                # figure width in inches
    ratios: tuple | None = None        # widths of the (source, equations, results) columns
    row_height: float | None = None    # inches per equation row
    footer: str | None = None          # a static line under everything (e.g. where an operand comes from)


# Helpers the builders share (viz.conv, viz.pool)


def padded(plane, pads, value=0.0):
    """(values, mask): ``plane`` (H, W) padded by pads = (top, bottom, left, right) with ``value``; mask marks
    the padding cells (drawn hatched)."""
    pt, pb, pl, pr = pads
    vals = np.pad(np.asarray(plane, np.float64), ((pt, pb), (pl, pr)), constant_values=value)
    mask = np.pad(np.zeros(plane.shape, bool), ((pt, pb), (pl, pr)), constant_values=True)
    return vals, mask


def window_cells(rows, cols, pt, pl):
    """(len(rows) * len(cols), 2) int: the window's cells as (row, col) in the grid padded by pt rows, pl columns."""
    r, c = np.meshgrid(rows + pt, cols + pl, indexing="ij")
    return np.stack([r.ravel(), c.ravel()], axis=1)


def span_text(word, idx) -> str:
    """Which rows (or columns) a window reads: span_text("row", [2]) = "row 2", [0, 1, 2] -> "rows 0 to 2"."""
    lo, hi = int(np.min(idx)), int(np.max(idx))
    return f"{word} {lo}" if lo == hi else f"{word}s {lo} to {hi}"


def _operator_text(fig, left_ax, right_ax, s):
    a, b = left_ax.get_position(), right_ax.get_position()
    y = (a.y0 + a.y1) / 2
    return fig.text((a.x1 + b.x0) / 2, y, s, ha="center", va="center", fontsize=14)


def _scale_for(grids):
    """(width, height) factors that give every grid within reach (MAX_SCALE) readable numbers."""
    within = [g.needs for g in grids if max(g.needs) <= MAX_SCALE]
    return max((n[0] for n in within), default=1.0), max((n[1] for n in within), default=1.0)


def _values(a, active):
    return a[active] if active.any() else a


def render(scene: Scene, *, record=None, dpi: int = 100, scale=None) -> Animation:
    """Draw ``scene``; ``scale`` (width, height factors; default: as much as the grids' numbers need, at most
    MAX_SCALE) enlarges the figure. Grids whose numbers would still be too small show colours only, named
    in a note at the bottom."""
    from matplotlib.patches import Rectangle

    F = len(scene.captions)
    nrows = len(scene.rows)
    has_src = any(r.source is not None for r in scene.rows)
    sx, sy = scale or (1.0, 1.0)
    row_h = (scene.row_height or (2.7 if nrows == 1 else 2.3)) * sy
    # room for the footer and the colours-only note (the second build, when one is needed)
    note_h = 0.22 * (bool(scene.footer) + bool(scale))
    height = 1.1 + row_h * max(nrows, 1) + (0.35 if scene.totals else 0) + note_h
    fig = new_figure(scene.width * sx, height, dpi)
    top = 1 - 0.85 / height
    bottom = ((0.55 if scene.totals else 0.25) + note_h) / height
    ratios = list(scene.ratios) if scene.ratios else ([1.15] if has_src else []) + [1.35, 0.95]
    outer = fig.add_gridspec(1, len(ratios), width_ratios=ratios, left=0.02, right=0.98, top=top, bottom=bottom,
                             wspace=0.12)
    fig.suptitle(scene.title, fontsize=style.FONT["title"], y=1 - 0.18 / height)
    caption = fig.text(0.5, 1 - 0.55 / height, "", ha="center", va="center", fontsize=style.FONT["caption"])
    src_spec = outer[0].subgridspec(nrows, 1, hspace=0.35) if has_src else None
    one_src = sum(r.source is not None for r in scene.rows) == 1  # e.g. pool --compare: one input, the whole column
    eq_spec = outer[1 if has_src else 0].subgridspec(nrows, 1, hspace=0.45)
    res_spec = outer[-1].subgridspec(len(scene.results), 1, hspace=0.35)
    dynamic, rows_art, grids, colours_only = [], [], [], []
    for r, eq in enumerate(scene.rows):
        art = {"eq": eq}
        if eq.source is not None:
            src = eq.source
            ax = fig.add_subplot(outer[0] if one_src else src_spec[r])
            big = max(src.values.shape) > NUMBERS_UP_TO
            kw = src.scheme or style.scheme(src.values[~src.padding] if (~src.padding).any() else src.values)
            g = Grid(ax, src.values.shape, **kw, numbers=not big, padding=src.padding,
                     title=src.title, values=src.values)
            grids.append(g)
            colours_only += [src.title.split(" (")[0]] if big else []
            g.set(src.values)
            if src.tick_labels is not None and not big:
                rl, cl = src.tick_labels
                ax.set_yticks(range(len(rl)), [str(v) for v in rl])
                ax.set_xticks(range(len(cl)), [str(v) for v in cl])
                ax.tick_params(labelsize=7, length=0, pad=1)
            T = src.cells.shape[1]
            patches = [ax.add_patch(Rectangle((0, 0), 1, 1, facecolor=style.WINDOW, alpha=0.28, edgecolor="none",
                                              zorder=3.5, visible=False)) for _ in range(T)]
            border = [ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=style.WINDOW, lw=2.2, zorder=4,
                                             visible=False)) for _ in range(T)]
            art.update(src_grid=g, patches=patches, border=border)
            dynamic += patches + border
        sub = eq_spec[r].subgridspec(1, 3, wspace=0.55)
        h, w = eq.a.shape[1:]
        a_kw = eq.a_scheme or style.scheme(eq.a[eq.active] if eq.active.any() else eq.a)
        fs = 12 if max(h, w) <= 3 else None
        if eq.b is None:
            sub = eq_spec[r].subgridspec(1, 5)
        ga = Grid(fig.add_subplot(sub[0] if eq.b is not None else sub[0, 1:4]), (h, w), **a_kw,
                  title=eq.titles[0], dynamic_padding=True, fontsize=fs, values=_values(eq.a, eq.active))
        gb = gp = None
        if eq.b is not None:
            b_kw = eq.b_scheme or style.scheme(eq.b)
            p_kw = eq.p_scheme or style.scheme(eq.p)
            gb = Grid(fig.add_subplot(sub[1]), (h, w), **b_kw, title=eq.titles[1], fontsize=fs,
                      values=_values(eq.b, eq.active))
            gp = Grid(fig.add_subplot(sub[2]), (h, w), **p_kw, title=eq.titles[2], fontsize=fs,
                      values=_values(eq.p, eq.active))
            ops = (_operator_text(fig, ga.ax, gb.ax, eq.op), _operator_text(fig, gb.ax, gp.ax, "="))
        else:
            ops = ()
        pos = (gp or ga).ax.get_position()
        s_text = fig.text((pos.x0 + pos.x1) / 2, pos.y0 - 0.02, "", ha="center", va="top",
                          fontsize=style.FONT["caption"], fontweight="bold")
        mark = None
        b_fixed = gb is not None and eq.active.all() and bool((eq.b == eq.b[:1]).all())
        if b_fixed:  # the same kernel in every frame: draw it once, into the static background
            gb.set(eq.b[0])
        dynamic += ga.dynamic() + ([] if gb is None or b_fixed else gb.dynamic())
        dynamic += (gp.dynamic() if gp is not None else []) + [s_text]
        if eq.marks is not None:
            from ._grid import box

            mark = box(ga.ax, 0, 0, 1, 1, color=style.CHOSEN, lw=4, zorder=5)
            mark.set_visible(False)
            dynamic.append(mark)
        art.update(ga=ga, gb=gb, gp=gp, sum=s_text, mark=mark, ops=ops, b_fixed=b_fixed)
        grids += [g for g in (ga, gb, gp) if g is not None]
        rows_art.append(art)
    res_art = []
    for k, res in enumerate(scene.results):
        ax = fig.add_subplot(res_spec[k])
        kw = res.scheme or style.scheme(res.values)
        big = max(res.values.shape) > NUMBERS_UP_TO
        g = FillGrid(ax, res.values, res.written_at, **kw, numbers=not big, title=res.title)
        grids.append(g)
        colours_only += [res.title.split(" (")[0]] if big else []
        cur = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=style.WINDOW, lw=2.5, zorder=5,
                                     visible=False))
        res_art.append(dict(grid=g, cur=cur, res=res))
        dynamic += g.dynamic() + [cur]
    if scale is None:
        want = _scale_for(grids)
        if max(want) > 1.0 or colours_only or any(g.dropped for g in grids):
            # build it again, larger (the fonts keep their size, the cells grow), with room for the note
            return render(scene, record=record, dpi=dpi, scale=(min(want[0] * 1.02, MAX_SCALE),
                                                                 min(want[1] * 1.02, MAX_SCALE)))
    colours_only += [g.ax.get_title() for g in grids if g.dropped]
    note = footer = None
    if colours_only:
        names = ", ".join(dict.fromkeys(colours_only))
        note = fig.text(0.01, 0.08 / height, f"Colours only (cells too small for readable numbers): {names}. "
                        "A smaller input shows them.", ha="left", va="bottom", fontsize=8, color="#444444")
    if scene.footer:
        footer = fig.text(0.01, (0.08 + (0.22 if scale else 0)) / height, scene.footer, ha="left", va="bottom",
                          fontsize=9, color="#222222")
    totals = None
    if scene.totals:
        totals = fig.text(0.5, (0.2 + note_h) / height, "", ha="center", va="center", fontsize=style.FONT["caption"],
                          fontweight="bold")
        dynamic.append(totals)
    dynamic.append(caption)

    def update(f):
        for art in rows_art:
            eq = art["eq"]
            on = bool(eq.active[f])
            if "patches" in art:
                cells = eq.source.cells[f]
                for (i, j), pa, bo in zip(cells, art["patches"], art["border"]):
                    for patch in (pa, bo):
                        patch.set_xy((j - 0.5, i - 0.5))
                        patch.set_visible(on and eq.source.active[f])
            hidden = None if on else np.ones(eq.a.shape[1:], bool)
            art["ga"].set(eq.a[f], hidden=hidden, padding=eq.a_pad[f])
            if art["gb"] is not None:
                if not art["b_fixed"]:
                    art["gb"].set(eq.b[f], hidden=hidden)
                art["gp"].set(eq.p[f], hidden=hidden)
            art["sum"].set_text(eq.sums[f] if on else "")
            if art["mark"] is not None:
                i, j = eq.marks[f]
                art["mark"].set_xy((j - 0.5, i - 0.5))
                art["mark"].set_visible(on and i >= 0)
        for ra in res_art:
            res = ra["res"]
            ra["grid"].set_frame(f)
            now = np.argwhere(res.written_at == f)
            if len(now):
                i, j = now[0]
                ra["cur"].set_xy((j - 0.5, i - 0.5))
            ra["cur"].set_visible(bool(len(now)))
        if totals is not None:
            totals.set_text(scene.totals[f])
        caption.set_text(scene.captions[f])
        return dynamic

    sticky = [a for ra in res_art for a in ra["grid"].all_cells()]
    appearing = (sticky, lambda f: [a for ra in res_art for a in ra["grid"].appearing(f)])
    return Animation(fig, update, F, name=scene.name, title=scene.title,
                     artists={"rows": rows_art, "results": res_art, "caption": caption, "totals": totals,
                              "note": note, "footer": footer},
                     record=record, dynamic=dynamic, appearing=appearing)
