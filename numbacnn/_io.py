"""Atomic file writes (numbacnn._io): a file appears complete or not at all, never half written.

Temporary files are named ``.numbacnn-tmp.<name>.<random><suffix>`` (``TMP_PREFIX``, ``is_temp_name``), so a
reader or writer that finds one left by a killed process recognises it as debris, ignores it and may remove it.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".numbacnn-tmp."
# older numbacnn versions named temporary files ".<name>.<random><suffix>" (mkstemp: 8 characters of [a-z0-9_])
_LEGACY_TMP = re.compile(r"^\.(manifest\.json|step-\d+\.npz|scalars-\d+\.npz)\.[a-z0-9_]{8}(\.json|\.npz)$")


def is_temp_name(name) -> bool:
    """True for the name (not a path) of a temporary file that ``atomic_path`` writes (or an older version wrote)."""
    name = os.fspath(name)
    return name.startswith(TMP_PREFIX) or bool(_LEGACY_TMP.match(name))


class NotAFileTargetError(ValueError):
    """An output path that exists and is not a regular file (a folder, a device, a FIFO, a socket)."""


def check_target(path) -> None:
    """NotAFileTargetError when ``path`` exists and is not a regular file (a symlink to a regular file is fine):
    an atomic write would replace a device node such as /dev/null, or a FIFO, with a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NotAFileTargetError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "not a regular file")
    raise NotAFileTargetError(f"cannot write {os.fspath(path)!r}: it exists and is {kind}; numbacnn only writes "
                              f"regular files: give a new file name")


@contextmanager
def atomic_path(path, *, suffix: str | None = None, fsync: bool = False):
    """Yield a temporary path next to ``path``; when the block ends without error, move it onto ``path``.

    The temporary file gets the usual permissions (mkstemp makes it private), a name ``is_temp_name``
    recognises, and keeps ``path``'s extension unless ``suffix`` is given (some writers pick the format from it).
    On any error, KeyboardInterrupt included, the temporary file is removed and ``path`` is left as it was.
    NotAFileTargetError (a ValueError) before anything is written when ``path`` exists and is not a regular file.
    """
    path = Path(path)
    check_target(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{path.name}.",
                               suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        check_target(path)  # still not a device or a folder (made while the file was written)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
