"""The fuzz suite (tests/fuzz): bad, edge and hostile inputs to the API, the CLI and the file readers, and kills.

Every test counts the cases it tries with ``tally(area, kind, n=1)`` (``from fuzz_tally import tally``); the run
ends with a report of how many cases each class tried. The classes are the ways a case can go wrong:
    crash         memory safety: an array a kernel writes has the wrong shape/dtype/writability, or sizes overflow
    wrong result  a value or shape that differs from numbacnn.reference / PyTorch (NaN, inf, scalars, dtypes)
    raw error     an error that is not one clear line naming the argument and the value (API: a ValueError or
                  TypeError with the argument's name; CLI: "Error: ..." and exit 2 / 1, never a traceback)
    crafted file  a trace, checkpoint or image file made by hand to break a reader
    kill          SIGKILL / SIGTERM / Ctrl-C during a traced run, then reading and resuming what it left
The normal run tries a few thousand cases in one to two minutes, the same ones every run (derandomized).
NUMBACNN_FUZZ=soak (or tests marked ``soak``, run with ``pytest -m soak tests/fuzz`` and NUMBACNN_FUZZ=soak) tries
many more hypothesis examples, random ones.
"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_tally import CLASSES, COUNTS  # noqa: E402

try:
    from hypothesis import HealthCheck, settings

    # The CI profile is derandomized: the same examples every run, so a red CI run means a change broke something,
    # not that the dice found an old bug (soak runs are random; pin what they find with @example).
    settings.register_profile("fuzz", max_examples=40, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    settings.register_profile("fuzz-soak", max_examples=2000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
except ImportError:  # pragma: no cover
    pass

SOAK = os.environ.get("NUMBACNN_FUZZ") == "soak"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``soak`` run only with NUMBACNN_FUZZ=soak (they take minutes to hours)."""
    if SOAK:
        return
    skip = pytest.mark.skip(reason="long fuzzing: run with NUMBACNN_FUZZ=soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    areas = sorted({area for area, _ in COUNTS})
    tr = terminalreporter
    tr.write_sep("=", "fuzz report: cases tried per class (a failure in any of them fails its test)")
    width = max(len(c) for c in CLASSES)
    tr.write_line(f"{'class':<{width}}  " + "  ".join(f"{a:>6}" for a in areas) + "   total")
    for kind in CLASSES:
        row = [COUNTS.get((a, kind), 0) for a in areas]
        tr.write_line(f"{kind:<{width}}  " + "  ".join(f"{n:>6}" for n in row) + f"  {sum(row):>6}")
    tr.write_line(f"{'all':<{width}}  " + "  ".join(f"{sum(COUNTS.get((a, k), 0) for k in CLASSES):>6}"
                                                    for a in areas) + f"  {sum(COUNTS.values()):>6}")
