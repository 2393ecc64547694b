"""Reading traces back: ``load(path)`` for model traces (folders) and op traces (``.npz`` files)."""
from __future__ import annotations

import os

from .format import TraceError
from .record import OpTrace


def load(path):
    """A model trace folder -> ``Trace``; an op trace file -> ``OpTrace``. TraceError for anything else."""
    path = os.fspath(path)
    if os.path.isdir(path):
        from .model import Trace

        return Trace(path)
    if not os.path.exists(path):
        raise TraceError(f"{path!r} does not exist")
    return OpTrace.load(path)
