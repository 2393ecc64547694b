"""The Python snippets in README.md and docs/gallery.md run as written (docs that cannot go stale)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = [(doc, i, code) for doc in ("README.md", "docs/gallery.md")
            for i, code in enumerate(re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S))]


@pytest.mark.parametrize("doc,i,code", SNIPPETS, ids=[f"{d}#{i}" for d, i, _ in SNIPPETS])
def test_snippet_runs(doc, i, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write files
    exec(compile(code, f"{doc} snippet {i}", "exec"), {"__name__": "__snippet__"})


def test_there_are_snippets():
    assert len(SNIPPETS) >= 2
