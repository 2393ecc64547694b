"""numbacnn._fork.Forked: a function's value or exception comes back from a forked child; the CLI uses it
to run the kernels while matplotlib loads, so the drawing process never imports Numba."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numbacnn import _fork
from numbacnn._fork import Forked, fork_available


@pytest.fixture(autouse=True)
def numba_not_loaded(monkeypatch):
    """This test process has Numba loaded (Forked then runs inline); these functions need no Numba."""
    monkeypatch.setattr(_fork, "_worth_forking", fork_available)


def _square_sum(a, *, plus=0):
    return float((np.asarray(a) ** 2).sum()) + plus, os.getpid()


def _bad(n):
    raise ValueError(f"n must be positive, got n={n}")


def test_value_comes_back_from_the_child():
    value, pid = Forked(_square_sum, [1, 2, 3], plus=1).result()
    assert value == 15.0
    assert (pid != os.getpid()) == fork_available()


def test_exception_is_raised_here():
    job = Forked(_bad, -1)
    with pytest.raises(ValueError, match="n=-1"):
        job.result()


def test_a_child_that_dies_is_replaced_by_running_here():
    parent = os.getpid()

    def dies():
        if os.getpid() != parent:
            os.kill(os.getpid(), 9)
        return "done here"

    assert Forked(dies).result() == "done here"


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_drawing_process_never_imports_numba(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from numbacnn.commands.animate import _conv_traces, _run_kernels
        x = np.ones((1, 1, 4, 5), np.float32); w = np.array([[[[1, -1]]]], np.float32)
        trace, flipped = _run_kernels(_conv_traces, x, w, None, False, True, (4, 4), dict(target="cpu"))
        from numbacnn import viz
        viz.conv(trace, flipped=flipped, dpi=30).save({str(tmp_path / 'a.gif')!r})
        assert trace.out.shape == (1, 1, 4, 4) and flipped is not None
        print("numba" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "False"
