"""Output paths checked before the work starts (numbacnn._paths): the folder exists and takes a new file.

Used by the CLI for every file it writes (animations, trace exports), so a mistake in ``-o`` costs nothing:
no rendering or training first, no folder created that the user did not ask for.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from ._io import TMP_PREFIX, NotAFileTargetError, check_target


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the path and says why."""


def check_output_path(path, suffixes=None) -> Path:
    """``path`` as a Path when a file can be created there; OutputPathError (naming it) otherwise.

    ``suffixes``: the extensions allowed (lower case, with the dot), or None for any. The folder must exist
    (it is never created); an existing ``path`` must be a regular file (not a device such as /dev/null, a
    FIFO or a socket, which an atomic write would replace); a probe file is created in it and removed at once, so a folder that looks writable
    but is not (/proc, a read-only mount, a full disk) is caught too.
    """
    path = Path(path)
    shown = str(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        allowed = suffixes[0] if len(suffixes) == 1 else f"one of {', '.join(suffixes)}"
        raise OutputPathError(f"{shown!r} has the extension {path.suffix or '(none)'!r}: use {allowed}")
    if path.is_dir():
        raise OutputPathError(f"{shown!r} is a folder: give a file name")
    try:
        check_target(path)  # an existing device, FIFO or socket would be replaced by a regular file
    except NotAFileTargetError as exc:
        raise OutputPathError(str(exc)) from None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise OutputPathError(f"cannot write {shown!r}: the folder {str(folder)!r} does not exist "
                              "(numbacnn does not create folders: make it first)")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {shown!r}: {str(folder)!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{path.name}.", suffix=".probe")
    except OSError as exc:
        why = (f"no permission to write in {str(folder)!r}" if exc.errno in (errno.EACCES, errno.EPERM) else
               f"files cannot be created in {str(folder)!r} ({exc.strerror or exc})")
        raise OutputPathError(f"cannot write {shown!r}: {why}") from None
    os.close(fd)
    os.unlink(probe)
    return path
