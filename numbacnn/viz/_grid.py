"""A matrix drawn as coloured cells with its numbers (numbacnn.viz._grid); built once, updated with ``set``."""
from __future__ import annotations

import numpy as np

from . import style


def _colormap(name):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=style.PENDING)


class Grid:
    """Cells of a (rows, cols) matrix on ``ax``: cell (i, j) is centred at x=j, y=i (row 0 on top).

    ``numbers`` draws each value in its cell; ``padding`` (bool mask) marks cells drawn hatched grey whatever
    their value. ``set(values, hidden=mask)`` leaves hidden cells blank. ``values``: every value the grid will
    show (all frames): one number format (style.number_format) and one font size for all of them; when that
    font would be under style.MIN_CELL_FONT the grid shows colours only (``dropped``; ``needs`` says how much
    wider and taller the figure would have to be).
    """

    def __init__(self, ax, shape, *, cmap, vmin, vmax, numbers=True, fontsize=None, title=None, padding=None,
                 digits=2, ticks=False, dynamic_padding=False, values=None):
        from matplotlib.colors import Normalize

        self.ax = ax
        self.shape = tuple(shape)
        self.cmap = _colormap(cmap)
        self.norm = Normalize(vmin, vmax)
        self.digits = digits
        rows, cols = self.shape
        self.image = ax.imshow(np.ma.masked_all(self.shape), cmap=self.cmap, norm=self.norm,
                               interpolation="nearest", extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), zorder=1)
        ax.set_xlim(-0.5, cols - 0.5)
        ax.set_ylim(rows - 0.5, -0.5)
        ax.set_aspect("equal")
        from matplotlib.collections import LineCollection

        segs = [[(j + 0.5, -0.5), (j + 0.5, rows - 0.5)] for j in range(cols - 1)]
        segs += [[(-0.5, i + 0.5), (cols - 0.5, i + 0.5)] for i in range(rows - 1)]
        self.lines = ax.add_collection(LineCollection(segs, colors="#9a9a9a", linewidths=0.5, zorder=1.5))
        if ticks:
            ax.set_xticks(range(cols))
            ax.set_yticks(range(rows))
            ax.tick_params(labelsize=7, length=0, pad=1)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        for side in ax.spines.values():
            side.set_color("#666666")
        if title:
            ax.set_title(title, fontsize=style.FONT["label"], pad=3)
        self.padding = np.zeros(self.shape, bool) if padding is None else np.asarray(padding, bool)
        self.hatch = None
        if self.padding.any():
            from matplotlib.collections import PatchCollection
            from matplotlib.patches import Rectangle

            rects = [Rectangle((j - 0.5, i - 0.5), 1, 1) for i, j in np.argwhere(self.padding)]
            self.hatch = ax.add_collection(PatchCollection(rects, facecolor=style.PADDING, edgecolor="#9a9a9a",
                                                           hatch="///", linewidth=0.5, zorder=2))
        self.cell_hatch = None
        if dynamic_padding:  # padding that changes from frame to frame (a window sliding over the border)
            from matplotlib.patches import Rectangle

            self.cell_hatch = np.empty(self.shape, dtype=object)
            for i in range(rows):
                for j in range(cols):
                    r = Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=style.PADDING, edgecolor="#9a9a9a",
                                  hatch="///", linewidth=0.5, zorder=2, visible=False)
                    self.cell_hatch[i, j] = ax.add_patch(r)
        self.texts = None
        self.cell_pt, self.slot_pt = cell_size(ax, self.shape)
        self.base_fontsize = fontsize or max(style.FONT["cell"], min(14.0, 0.42 * self.cell_pt))
        self.fontsize = None
        self.format, self.needs, self.dropped = None, (1.0, 1.0), False
        if numbers and values is not None:
            self.format = style.number_format(values, digits)
            longest = max((len(self.format(v)) for v in np.unique(np.asarray(values, np.float64))), default=1)
            self.fontsize, self.needs = fit_font(self.base_fontsize, self.cell_pt, self.slot_pt, longest)
            self.dropped = self.fontsize is None
            numbers = not self.dropped
        if numbers:
            fs = self.fontsize or self.base_fontsize
            self.texts = np.empty(self.shape, dtype=object)
            for i in range(rows):
                for j in range(cols):
                    pad = self.padding[i, j]
                    self.texts[i, j] = ax.text(j, i, "", ha="center", va="center", fontsize=fs, zorder=3,
                                               color="#555555" if pad else style.TEXT_DARK,
                                               fontstyle="italic" if pad else "normal")
        self.values = None

    def set(self, values, hidden=None, padding=None):
        """Show ``values`` (rows, cols); cells where ``hidden`` is True are blank (not computed yet).

        ``padding`` (bool mask, grids built with ``dynamic_padding``) draws those cells as padding this frame.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape != self.shape:
            raise ValueError(f"values must have shape {self.shape}, got {values.shape}")
        self.values = values
        mask = np.zeros(self.shape, bool) if hidden is None else np.asarray(hidden, bool)
        self.image.set_data(np.ma.array(values, mask=mask))
        pad = self.padding
        if self.cell_hatch is not None:
            pad = np.zeros(self.shape, bool) if padding is None else np.asarray(padding, bool) & ~mask
            for (i, j), r in np.ndenumerate(self.cell_hatch):
                r.set_visible(bool(pad[i, j]))
        if self.texts is not None:
            colors = self.cmap(self.norm(values))
            form = self.format or style.number_format(values[~mask], self.digits)
            strings = [form(v) for v in values.ravel()]
            longest = max(len(s) for s, m in zip(strings, mask.ravel()) if not m) if not mask.all() else 1
            fs = self.fontsize if self.format else round(min(self.base_fontsize, fits(self.cell_pt, longest)), 1)
            if fs != self.fontsize:
                for t in self.texts.ravel():
                    t.set_fontsize(fs)
            for k, ((i, j), t) in enumerate(np.ndenumerate(self.texts)):
                if mask[i, j]:
                    t.set_text("")
                    continue
                t.set_text(strings[k])
                if pad[i, j]:
                    t.set_color("#555555")
                    t.set_fontstyle("italic")
                else:
                    t.set_color(style.text_color(colors[i, j]))
                    if self.cell_hatch is not None:
                        t.set_fontstyle("normal")
            self.fontsize = fs
        return self

    def dynamic(self) -> list:
        """The artists ``set`` changes."""
        out = [self.image, self.lines] + ([self.hatch] if self.hatch is not None else [])
        out += [] if self.cell_hatch is None else list(self.cell_hatch.ravel())
        out += list(self.ax.spines.values())
        return out + ([] if self.texts is None else list(self.texts.ravel()))

    def drawn(self) -> np.ndarray:
        """The texts currently drawn, as an object array of strings (tests compare them with traces)."""
        if self.texts is None:
            return np.full(self.shape, "", dtype=object)
        return np.vectorize(lambda t: t.get_text(), otypes=[object])(self.texts)


def cell_size(ax, shape):
    """(cell side in points as drawn, (cell width, cell height) of the axes' slot before the equal aspect)."""
    rows, cols = shape
    fw, fh = ax.figure.get_size_inches()
    slot = ax.get_position(original=True)
    slot_pt = (slot.width * fw * 72 / cols, slot.height * fh * 72 / rows)
    ax.apply_aspect()
    bb = ax.get_position()
    return min(bb.width * fw * 72 / cols, bb.height * fh * 72 / rows), slot_pt


def fits(cell_pt, longest) -> float:
    """The largest font (pt) whose ``longest``-character number fits a cell of ``cell_pt`` points."""
    return 0.9 * cell_pt / (0.62 * max(longest, 1))


def fit_font(base, cell_pt, slot_pt, longest):
    """(font size or None when under style.MIN_CELL_FONT, (width, height) factors the figure would need)."""
    fs = round(min(base, fits(cell_pt, longest)), 1)
    need = style.MIN_CELL_FONT * 0.62 * max(longest, 1) / 0.9  # points per cell at the smallest font
    needs = (max(1.0, need / slot_pt[0]), max(1.0, need / slot_pt[1]))
    return (fs if fs >= style.MIN_CELL_FONT else None), needs


def box(ax, i0, j0, rows, cols, color=style.WINDOW, lw=2.5, zorder=4):
    """A rectangle outlining cells [i0, i0 + rows) x [j0, j0 + cols); move it with ``place_box``."""
    from matplotlib.patches import Rectangle

    r = Rectangle((j0 - 0.5, i0 - 0.5), cols, rows, fill=False, edgecolor=color, linewidth=lw, zorder=zorder)
    ax.add_patch(r)
    return r


def place_box(rect, i0, j0, rows=None, cols=None):
    rect.set_xy((j0 - 0.5, i0 - 0.5))
    if rows is not None:
        rect.set_height(rows)
    if cols is not None:
        rect.set_width(cols)


class FillGrid:
    """A map whose cells appear one at a time (an output being written), cheap to animate.

    The empty grid is drawn once; cell (i, j) is a coloured square with its number, shown from frame
    ``written_at[i, j]`` on (never when -1). ``appearing(f)`` lists the artists that appear at frame f, so a
    renderer can paint them once into its cached background instead of redrawing every cell every frame.
    """

    def __init__(self, ax, values, written_at, *, cmap, vmin, vmax, numbers=True, title=None, fontsize=None):
        from matplotlib.patches import Rectangle

        values = np.asarray(values, dtype=np.float64)
        self.values, self.written_at = values, np.asarray(written_at)
        self.base = Grid(ax, values.shape, cmap=cmap, vmin=vmin, vmax=vmax, numbers=False, title=title)
        self.base.set(values, hidden=np.ones(values.shape, bool))
        self.ax, self.shape = ax, values.shape
        colors = self.base.cmap(self.base.norm(values))
        form = style.number_format(values[self.written_at >= 0])
        strings = [form(v) for v in values.ravel()]
        longest = max(len(s) for s in strings)
        base_fs = fontsize or max(style.FONT["cell"], min(14.0, 0.42 * self.base.cell_pt))
        fs, self.needs = fit_font(base_fs, self.base.cell_pt, self.base.slot_pt, longest)
        self.dropped = numbers and fs is None
        numbers = numbers and not self.dropped
        fs = fs or base_fs
        self.by_frame, self.cells = {}, []
        self.texts = np.empty(values.shape, dtype=object)
        for (i, j), f in np.ndenumerate(self.written_at):
            t = ax.text(j, i, strings[i * values.shape[1] + j] if numbers else "", ha="center", va="center",
                        fontsize=fs, zorder=3, color=style.text_color(colors[i, j]), visible=False)
            self.texts[i, j] = t
            if f < 0:
                continue
            r = ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colors[i, j], edgecolor="#9a9a9a",
                                       linewidth=0.5, zorder=2, visible=False))
            self.cells.append((f, r, t))
            self.by_frame.setdefault(int(f), []).extend([r, t])

    def set_frame(self, f):
        """Show the cells written at frames <= f."""
        for when, r, t in self.cells:
            on = when <= f
            r.set_visible(on)
            t.set_visible(on)

    def appearing(self, f) -> list:
        return self.by_frame.get(int(f), [])

    def all_cells(self) -> list:
        return [a for _, r, t in self.cells for a in (r, t)]

    def dynamic(self) -> list:
        """Artists redrawn every frame: the frame of the map (cells sit under it)."""
        return list(self.ax.spines.values())

    def drawn(self) -> np.ndarray:
        return np.vectorize(lambda t: t.get_text() if t.get_visible() else "", otypes=[object])(self.texts)
