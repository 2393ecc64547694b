"""A glyph-caching Agg canvas (numbacnn.viz._agg): same pixels as matplotlib's, a fraction of the text cost.

A speed-up: numbacnn.speedups.figure_canvas hands it out, and NUMBACNN_SPEEDUPS=0 keeps matplotlib's own canvas.

An animation redraws the same few strings (cell values, captions) at the same places frame after frame.
matplotlib 3.11's Agg renderer lays out each string and renders every glyph with FreeType on every draw;
that was about half the time of rendering a frame. This renderer keeps

* each string's layout, keyed by the string, its font properties and the dpi, and
* each glyph's bitmap, keyed by font, size, glyph, transform and the sub-pixel part of its position
  (FreeType renders a glyph moved by whole pixels as the same bitmap moved by whole pixels),

and pastes the cached bitmaps with the same ``draw_text_image`` call matplotlib uses, so the pixels are
identical (tests/test_viz.py compares them with the stock renderer). Where matplotlib's internals differ
(other versions), ``CANVAS`` is the stock ``FigureCanvasAgg``.

Fork safety: an FT2Font reads its font file lazily through a file object whose offset a forked child shares
with its parent, so the two must never read through the same FT2Font (matplotlib empties its font cache in a
child for this reason). The layouts cached here hold FT2Font objects: a forked child empties these caches too.
"""
from __future__ import annotations

import math
import os
import weakref

import numpy as np
from matplotlib.backends import backend_agg
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

_SUPPORTED = all(hasattr(RendererAgg, name) for name in ("_draw_text_glyphs_and_boxes", "_prepare_font")) and \
    hasattr(backend_agg, "get_hinting_flag")
_MAX_GLYPHS = 20000   # cache bounds (a cleared cache only costs speed)
_MAX_LAYOUTS = 5000


_RENDERERS = weakref.WeakSet()


def _forget_fonts_after_fork():
    """In a forked child: drop every cached layout and glyph (they hold the parent's FT2Font objects)."""
    for renderer in list(_RENDERERS):
        renderer.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fonts_after_fork)


class GlyphCachingRenderer(RendererAgg):
    """RendererAgg whose plain-text ``draw_text`` reuses layouts and glyph bitmaps."""

    def __init__(self, width, height, dpi):
        super().__init__(width, height, dpi)
        self._layouts = {}
        self._glyphs = {}
        _RENDERERS.add(self)

    def forget(self):
        """Empty the caches (they refill as text is drawn)."""
        self._layouts = {}
        self._glyphs = {}

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        flags = backend_agg.get_hinting_flag()
        key = (s, hash(prop), prop.get_size_in_points(), self.dpi, flags,
               None if features is None else tuple(features), language)
        items = self._layouts.get(key)
        if items is None:
            font = self._prepare_font(prop)
            items = [(item.ft_object, item.glyph_index, item.x, item.y)
                     for item in font._layout(s, flags=flags, features=features, language=language)]
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = items
        self._draw_glyphs(gc, x, y, angle, prop.get_size_in_points(), items, flags)

    def _draw_glyphs(self, gc, x, y, angle, size, items, flags):
        """matplotlib's ``_draw_text_glyphs_and_boxes`` (no boxes), with each glyph's bitmap cached."""
        from matplotlib.ft2font import RenderMode

        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        antialiased = bool(gc.get_antialiased())
        matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
        mkey = tuple(matrix.ravel().tolist())
        for font, glyph_index, dx, dy in items:
            # 26.6 fixed point, as matplotlib computes it; FreeType's y is upwards
            tx = round(0x40 * (x + dx * cos - dy * sin))
            ty = round(0x40 * (self.height - y + dx * sin + dy * cos))
            key = (font, size, self.dpi, glyph_index, mkey, tx & 63, ty & 63, flags, antialiased)
            hit = self._glyphs.get(key)
            if hit is None:
                font.set_size(size, self.dpi)
                font._set_transform(matrix, [tx & 63, ty & 63])
                bitmap = font._render_glyph(glyph_index, flags,
                                            RenderMode.NORMAL if antialiased else RenderMode.MONO)
                buffer = np.array(bitmap.buffer)
                if not antialiased:
                    buffer *= 0xff
                hit = (buffer, bitmap.left, bitmap.top)
                if len(self._glyphs) >= _MAX_GLYPHS:
                    self._glyphs.clear()
                self._glyphs[key] = hit
            buffer, left, top = hit
            left += tx >> 6
            top += ty >> 6
            # draw_text_image's y is downwards & the bitmap's bottom side
            self._renderer.draw_text_image(buffer, left, int(self.height) - top + buffer.shape[0], 0, gc)


class GlyphCachingCanvas(FigureCanvasAgg):
    """FigureCanvasAgg drawing with ``GlyphCachingRenderer`` (the cache lives as long as the renderer)."""

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = GlyphCachingRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


CANVAS = GlyphCachingCanvas if _SUPPORTED else FigureCanvasAgg
