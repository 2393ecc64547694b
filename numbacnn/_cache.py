"""Where Numba keeps the compiled kernels (numbacnn._cache): ``cache=True``, so only the first run compiles.

Numba writes its cache next to the sources (``numbacnn/__pycache__``) and, when that folder is not
writable, in a user-wide folder. This module makes the second choice explicit and robust for a package
installed read-only: when ``NUMBA_CACHE_DIR`` is not set and the package folder is not writable, it
points Numba at ``$XDG_CACHE_HOME/numbacnn/numba`` (``~/.cache/numbacnn/numba``), or at a folder in
the temporary directory when the home folder is read-only too. Imported first by ``numbacnn``.
"""
from __future__ import annotations

import os
import sys
import tempfile

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _writable(path: str) -> bool:
    """True when ``path`` (created if missing) accepts a new file."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
        return True
    except OSError:
        return False


def cache_dir() -> str | None:
    """The folder to give Numba, or None when the in-tree ``__pycache__`` works (Numba's own default)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(os.path.join(_PACKAGE_DIR, "__pycache__")):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (os.path.join(home, "numbacnn", "numba"),
                      os.path.join(tempfile.gettempdir(), f"numbacnn-{os.getuid() if hasattr(os, 'getuid') else 0}",
                                   "numba")):
        if _writable(candidate):
            return candidate
    return None  # nowhere to write: Numba compiles in memory each run


def configure() -> None:
    """Set NUMBA_CACHE_DIR (and numba's config, if numba is already imported) when needed."""
    path = cache_dir()
    if path is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = path
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = path


configure()
