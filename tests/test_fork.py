"""numbacnn._fork.Forked and numbacnn.speedups: a function's value or exception comes back from a forked child;
the CLI uses it to run the kernels while matplotlib loads, so the drawing process never imports Numba.
NUMBACNN_SPEEDUPS=0 takes the plain path of every speed-up."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numbacnn import speedups
from numbacnn._fork import Forked, fork_available


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
        from numbacnn.commands._common import run_kernels
        from numbacnn.commands.animate import _conv_traces
        x = np.ones((1, 1, 4, 5), np.float32); w = np.array([[[[1, -1]]]], np.float32)
        trace, flipped = run_kernels(_conv_traces, x, w, None, False, True, (4, 4), dict(device="cpu"))
        from numbacnn import viz
        viz.conv(trace, flipped=flipped, dpi=30).save({str(tmp_path / 'a.gif')!r})
        assert trace.out.shape == (1, 1, 4, 4) and flipped is not None
        print("numba" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "False"


@pytest.mark.skipif(not fork_available(), reason="no fork on this platform")
def test_switched_off_the_kernels_run_in_the_drawing_process(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        from numbacnn import speedups
        from numbacnn.commands._common import run_kernels
        from numbacnn.commands.animate import _conv_traces
        assert speedups.run_beside(os.getpid).result() == os.getpid()  # run here, not in a child
        x = np.ones((1, 1, 4, 5), np.float32); w = np.array([[[[1, -1]]]], np.float32)
        trace, flipped = run_kernels(_conv_traces, x, w, None, False, False, (4, 4), dict(device="cpu"))
        print("numba" in sys.modules)
    """)
    env = dict(os.environ, NUMBACNN_SPEEDUPS="0")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("value,on", [(None, True), ("1", True), ("0", False), ("off", False), ("False", False)])
def test_the_switch(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv(speedups.SWITCH, raising=False)
    else:
        monkeypatch.setenv(speedups.SWITCH, value)
    assert speedups.enabled() is on
    assert speedups.can_fork() is (on and fork_available())
    assert speedups.render_workers(4, 64) == (4 if on and fork_available() else 1)
    if not on:  # the plain path: every frame here, the job runs when asked
        assert speedups.run_beside(os.getpid).result() == os.getpid()
    with pytest.raises(ValueError, match="workers"):
        speedups.render_workers(0, 64)


@pytest.mark.parametrize("on", [True, False])
def test_end_process(monkeypatch, on):
    """On: flush and os._exit(code) (no interpreter tear-down); off: sys.exit(code)."""
    monkeypatch.setenv(speedups.SWITCH, "1" if on else "0")
    ended = []

    def fake_exit(code):
        ended.append(code)
        raise RuntimeError("os._exit")

    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(RuntimeError if on else SystemExit) as info:
        speedups.end_process(3)
    assert ended == ([3] if on else [])
    if not on:
        assert info.value.code == 3
