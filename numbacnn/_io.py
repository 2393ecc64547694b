"""Atomic file writes (numbacnn._io): a file appears complete or not at all, never half written."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, *, suffix: str | None = None, fsync: bool = False):
    """Yield a temporary path next to ``path``; when the block ends without error, move it onto ``path``.

    The temporary file gets the usual permissions (mkstemp makes it private) and keeps ``path``'s
    extension unless ``suffix`` is given (some writers pick the format from it). On any error,
    KeyboardInterrupt included, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
