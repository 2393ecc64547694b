"""Animation: a figure built once, an ``update(i)`` that only changes its artists, and ways to show or save it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _save


def new_figure(width: float, height: float, dpi: int = 100):
    """A matplotlib Figure on the Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


class Animation:
    """Frames of one figure. ``len(anim)`` frames; ``anim.show(i)`` draws frame i; ``anim.save(path)`` writes it.

    ``artists`` names the artists that change (tests read the numbers drawn from them);
    ``record`` keeps the trace the animation was drawn from. ``dynamic`` lists every artist that
    ``update`` changes: rendering many frames then redraws only those over a cached background (blitting).
    ``appearing`` (a pair: every such artist, and a function frame -> the ones that appear at that frame)
    names artists that, once shown, stay unchanged: they are painted once into the cached background.
    """

    def __init__(self, fig, update, n_frames: int, *, name: str, title: str, artists=None, record=None,
                 dynamic=None, appearing=None):
        if n_frames < 1:
            raise ValueError(f"an animation needs at least one frame, got n_frames={n_frames}")
        self.fig = fig
        self._update = update
        self.n_frames = int(n_frames)
        self.name = name
        self.title = title
        self.artists = artists or {}
        self.record = record
        self.dynamic = list(dynamic) if dynamic is not None else None
        self.appearing = appearing
        self.current = None
        self.show(0)

    def __len__(self):
        return self.n_frames

    def __repr__(self):
        return f"Animation({self.name!r}, {self.n_frames} frames)"

    def show(self, i: int):
        """Bring the figure to frame ``i`` (0 <= i < len); returns the artists that changed."""
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} is out of range for {self.n_frames} frames")
        self.current = i
        return self._update(i)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as an (H, W, 3) uint8 RGB image."""
        self.show(i)
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[:, :, :3].copy()

    def frames(self, progress=None):
        """Every frame as RGB images; ``progress(1)`` is called after each one.

        With ``dynamic`` artists, the static rest of the figure is drawn once and each frame redraws only
        the dynamic artists on top of it (identical pixels, a fraction of the time).
        """
        if not self.dynamic:
            out = []
            for i in range(self.n_frames):
                out.append(self.frame(i))
                if progress is not None:
                    progress(1)
            return out
        canvas = self.fig.canvas
        sticky, new_at = self.appearing if self.appearing is not None else ([], lambda i: [])
        for a in self.dynamic + list(sticky):
            a.set_animated(True)
        try:
            canvas.draw()
            background = canvas.copy_from_bbox(self.fig.bbox)
            out = []
            for i in range(self.n_frames):
                self.show(i)
                canvas.restore_region(background)
                new = [a for a in new_at(i) if a.get_visible()]
                if new:
                    for a in new:
                        self.fig.draw_artist(a)
                    background = canvas.copy_from_bbox(self.fig.bbox)
                for a in self.dynamic:
                    if a.get_visible():
                        self.fig.draw_artist(a)
                out.append(np.asarray(canvas.buffer_rgba())[:, :, :3].copy())
                if progress is not None:
                    progress(1)
            return out
        finally:
            for a in self.dynamic + list(sticky):
                a.set_animated(False)

    def to_funcanimation(self, fps: float = 2):
        """A matplotlib FuncAnimation over the same update function."""
        from matplotlib.animation import FuncAnimation

        return FuncAnimation(self.fig, self.show, frames=self.n_frames, interval=1000 / fps, blit=False,
                             repeat=True, cache_frame_data=False)

    def to_jshtml(self, fps: float = 2) -> str:
        """HTML markup of matplotlib's JavaScript player (frames embedded)."""
        from matplotlib import rcParams

        old = rcParams["animation.embed_limit"]
        rcParams["animation.embed_limit"] = 500
        try:
            return self.to_funcanimation(fps).to_jshtml(fps=fps, default_mode="loop")
        finally:
            rcParams["animation.embed_limit"] = old

    def _repr_html_(self):
        return self.to_jshtml()

    def save(self, path, fps: float = 2, progress=None) -> Path:
        """Write to ``path``; the extension picks the format (.gif .mp4 .html .png). Returns the path.

        ``progress(1)`` is called once per rendered frame.
        """
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        path, ext = _save.check_output(path)
        if ext == ".html":
            return _save.write_html(self, path, fps, progress)
        frames = self.frames(progress)
        if ext == ".gif":
            return _save.write_gif(frames, path, fps)
        if ext == ".png":
            return _save.write_png(frames, path)
        return _save.write_mp4(frames, path, fps)

    def close(self):
        """Release the figure."""
        self.fig.clear()
