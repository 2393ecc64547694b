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


def fuzz_settings(**overrides):
    """hypothesis settings for a fuzz test: the "fuzz" profile (40 examples), "fuzz-soak" (2000) with
    NUMBACNN_FUZZ=soak. Use as ``@fuzz_settings()`` above ``@given``; the profile is not loaded globally."""
    import os

    from hypothesis import settings

    name = "fuzz-soak" if os.environ.get("NUMBACNN_FUZZ") == "soak" else "fuzz"
    return settings(settings.get_profile(name), **overrides)
