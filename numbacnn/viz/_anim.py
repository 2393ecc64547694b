"""Animation (numbacnn.viz._anim): a figure built once, an ``update(i)`` that only changes its artists, and ways
to show or save it. Rendering uses numbacnn.speedups (forked workers, the glyph-caching canvas) unless
NUMBACNN_SPEEDUPS=0."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from numbacnn import speedups

from . import _save


def preload():
    """Import matplotlib's figure machinery and load the default font (about half a second, once).

    The CLI calls this while the kernels run in another process; anything else may ignore it.
    """
    from matplotlib import colormaps, font_manager  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    speedups.figure_canvas()
    font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))


def new_figure(width: float, height: float, dpi: int = 100):
    """A matplotlib Figure on an Agg canvas (speedups.figure_canvas: one that caches glyphs), outside pyplot's
    global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
    speedups.figure_canvas()(fig)
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

    def frames(self, progress=None, workers: int | None = 1):
        """Every frame as an (F, H, W, 3) uint8 array; ``progress(k)`` is called as frames get done.

        With ``dynamic`` artists, the static rest of the figure is drawn once and each frame redraws only
        the dynamic artists on top of it (identical pixels, a fraction of the time).
        ``workers`` > 1 (or None: one per CPU core, at most 4) renders contiguous ranges of frames in forked
        processes that write into shared memory (speedups.render_workers: Linux only, not with
        NUMBACNN_SPEEDUPS=0; elsewhere, or if a worker fails, this process renders everything itself).
        The pixels do not depend on ``workers``.
        """
        n = self.n_frames
        workers = speedups.render_workers(workers, n)
        sticky = list(self.appearing[0]) if self.appearing is not None else []
        animated = (self.dynamic or []) + sticky
        for a in animated:
            a.set_animated(True)
        try:
            self.show(0)
            self.fig.canvas.draw()
            background = self.fig.canvas.copy_from_bbox(self.fig.bbox) if self.dynamic else None
            h, w = np.asarray(self.fig.canvas.buffer_rgba()).shape[:2]
            if workers == 1:
                out = np.empty((n, h, w, 3), np.uint8)
                self._render(0, n, out, background, progress)
                return out
            return self._render_parallel(workers, (n, h, w), background, progress)
        finally:
            for a in animated:
                a.set_animated(False)

    def _render(self, start: int, stop: int, out, background, progress=None, done=None):
        """Frames [start, stop) into ``out[start:stop]``; ``done[0]`` counts them (shared memory in workers)."""
        canvas = self.fig.canvas
        if background is not None and start > 0 and self.appearing is not None:
            # cells that appeared before ``start`` stay as they are: paint them into the background once
            self.show(start)
            canvas.restore_region(background)
            for f in range(start):
                for a in self.appearing[1](f):
                    if a.get_visible():
                        self.fig.draw_artist(a)
            background = canvas.copy_from_bbox(self.fig.bbox)
        for i in range(start, stop):
            self.show(i)
            if background is None:
                canvas.draw()
            else:
                canvas.restore_region(background)
                new = [a for a in self.appearing[1](i) if a.get_visible()] if self.appearing is not None else []
                if new:
                    for a in new:
                        self.fig.draw_artist(a)
                    background = canvas.copy_from_bbox(self.fig.bbox)
                for a in self.dynamic:
                    if a.get_visible():
                        self.fig.draw_artist(a)
            out[i] = np.asarray(canvas.buffer_rgba())[:, :, :3]
            if done is not None:
                done[0] += 1
            if progress is not None:
                progress(1)

    def _render_parallel(self, workers: int, shape, background, progress):
        """Fork ``workers - 1`` children that render the later ranges into shared memory; render the first here."""
        import mmap
        import os
        import sys
        import time

        n, h, w = shape
        bounds = np.linspace(0, n, workers + 1).round().astype(int)
        frame_bytes = h * w * 3
        shared = mmap.mmap(-1, 8 * workers + n * frame_bytes)
        counters = np.frombuffer(shared, np.int64, workers)
        out = np.frombuffer(shared, np.uint8, n * frame_bytes, offset=8 * workers).reshape(n, h, w, 3)
        sys.stdout.flush()
        sys.stderr.flush()
        children = {}
        try:
            for k in range(1, workers):
                pid = os.fork()
                if pid == 0:  # child: render its range, never return into the caller
                    status = 1
                    try:
                        self._render(bounds[k], bounds[k + 1], out, background, done=counters[k:k + 1])
                        status = 0
                    finally:
                        os._exit(status)
                children[k] = pid
            reported = 0

            def report():
                nonlocal reported
                got = int(counters[1:].sum())
                if progress is not None and got > reported:
                    progress(got - reported)
                reported = got

            self._render(0, bounds[1], out, background,
                         progress=None if progress is None else (lambda k: (progress(k), report())))
            while children:
                for k, pid in list(children.items()):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        del children[k]
                        if counters[k] < bounds[k + 1] - bounds[k]:  # the worker failed: render its range here
                            start = bounds[k] + int(counters[k])
                            self._render(start, bounds[k + 1], out, background, progress)
                report()
                if children:
                    time.sleep(0.005)
            return out  # backed by the shared map, which lives as long as this array (no copy: frames can be large)
        finally:
            for pid in children.values():  # interrupted: stop the workers
                try:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                except OSError:
                    pass

    def to_funcanimation(self, fps: float = 2):
        """A matplotlib FuncAnimation over the same update function."""
        from matplotlib.animation import FuncAnimation

        return FuncAnimation(self.fig, self.show, frames=self.n_frames, interval=1000 / fps, blit=False,
                             repeat=True, cache_frame_data=False)

    def to_jshtml(self, fps: float = 2) -> str:
        """HTML markup of matplotlib's JavaScript player with every frame embedded (as Jupyter shows it).

        Self-contained like the CLI's .html page: no stylesheet from a CDN, the buttons drawn with Unicode
        symbols, so the player works offline.
        """
        _save.check_fps(fps)
        return _save._offline(_save.player_markup(self.frames(), fps))

    def _repr_html_(self):
        """Jupyter's inline player (to_jshtml at 2 frames per second)."""
        return self.to_jshtml()

    def save(self, path, fps: float = 2, progress=None, workers: int | None = 1) -> Path:
        """Write to ``path``; the extension picks the format (.gif .mp4 .html .png). Returns the path.

        ``progress(k)`` is called as frames get rendered; ``workers``: see ``frames``.
        """
        _save.check_fps(fps)
        path, ext = _save.check_output(path)
        frames = self.frames(progress, workers)
        if ext == ".html":
            return _save.write_html(frames, path, fps, self.title)
        if ext == ".gif":
            return _save.write_gif(frames, path, fps)
        if ext == ".png":
            return _save.write_png(frames, path)
        return _save.write_mp4(frames, path, fps)

    def close(self):
        """Release the figure."""
        self.fig.clear()

