"""The fuzz suite's counter (tests/fuzz/fuzz_tally.py): how many cases each (area, class) tried; conftest prints it."""
from collections import Counter

CLASSES = ("crash", "wrong result", "raw error", "crafted file", "kill")
AREAS = ("api", "cli", "files", "kills")
COUNTS = Counter()


def tally(area, kind, n=1):
    """Count n cases of class ``kind`` tried in ``area`` (api, cli, files, kills)."""
    assert area in AREAS, f"area must be one of {AREAS}, got {area!r}"
    assert kind in CLASSES, f"kind must be one of {CLASSES}, got {kind!r}"
    COUNTS[(area, kind)] += n
