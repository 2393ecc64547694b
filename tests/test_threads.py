"""numbacnn._threads: each training step on Numba's threads or on one, whichever was faster lately; the same bits."""
from types import SimpleNamespace

import numba
import numpy as np
import pytest

from numbacnn import _threads, models, optim, train
from numbacnn._threads import EARLY_PROBES, FIRST, PROBE_EVERY, SKIP, ThreadChoice


_REAL_CPU_SECONDS = _threads.cpu_seconds


@pytest.fixture(autouse=True)
def _no_proc(monkeypatch):
    """The synthetic step times decide, not this machine's load (the tests below set ``others`` themselves)."""
    monkeypatch.setattr(_threads, "cpu_seconds", lambda: None)


def _run(choice, most, step_seconds, steps):
    """The counts ``choice`` picks over ``steps`` steps when a step on t threads takes step_seconds(t, i)."""
    picked = []
    for i in range(steps):
        t = choice.pick(most)
        picked.append(t)
        choice.record(t, step_seconds(t, i), 256)
    return picked


def test_tries_both_then_keeps_the_faster_and_probes_the_other_now_and_then():
    picked = _run(ThreadChoice(), 2, lambda t, i: 0.008 if t == 2 else 0.015, 3 * PROBE_EVERY)
    assert picked[:SKIP + 2 * FIRST] == [2] * (SKIP + FIRST) + [1] * FIRST
    ones = [i + 1 for i, t in enumerate(picked) if t == 1][FIRST:]  # step numbers of the probes after the tries
    assert ones == [s for s in range(1, len(picked) + 1) if s in EARLY_PROBES or s % PROBE_EVERY == 0]
    assert picked.count(2) > 0.95 * len(picked)


def test_slow_first_steps_do_not_stick_the_choice_on_one_thread():
    # the first steps at 2 threads are slow (fresh memory), later ones fast: an early probe puts it right
    picked = _run(ThreadChoice(), 2, lambda t, i: (0.030 if i < 4 else 0.008) if t == 2 else 0.014, 80)
    assert picked[40:].count(2) >= 39


def test_load_that_comes_and_goes_moves_the_choice_and_back():
    # 2 threads: 8 ms quiet, 17 ms under load (steps 100-299); 1 thread: 14.5 ms either way
    def seconds(t, i):
        return (0.017 if 100 <= i < 300 else 0.008) if t == 2 else 0.0145
    picked = _run(ThreadChoice(), 2, seconds, 500)
    assert picked[110:300].count(1) > 0.9 * 190  # under load: one thread, within a few steps
    assert picked[300 + PROBE_EVERY + 10:].count(2) > 0.9 * len(picked[300 + PROBE_EVERY + 10:])  # back after a probe


def test_a_slow_first_step_does_not_decide():
    picked = _run(ThreadChoice(), 2, lambda t, i: (0.3 if i == 0 else 0.008) if t == 2 else 0.015, 40)
    tried = SKIP + 2 * FIRST
    assert picked[tried:].count(2) == len(picked) - tried - sum(tried < s <= 40 for s in EARLY_PROBES)


def test_one_thread_allowed_means_one_thread():
    choice = ThreadChoice()
    assert _run(choice, 1, lambda t, i: 0.01, 10) == [1] * 10 and 2 not in choice.times


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_training_gives_the_same_weights_whatever_the_threads_and_restores_the_setting(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)

    def weights(pick):
        net = models.lenet(variant="modern", seed=0)
        monkeypatch.setattr(_threads.choice_for(net), "pick", pick)
        opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        for _ in range(4):
            train.train_step(net, opt, x, y)
        return [p.data.copy() for p in net.parameters()]

    numba.set_num_threads(2)
    seen = []
    alternating = weights(lambda most: seen.append(numba.get_num_threads()) or (1 if len(seen) % 2 else most))
    assert numba.get_num_threads() == 2  # the user's setting is back after every step
    fixed = weights(lambda most: most)
    assert all(np.array_equal(a, b) for a, b in zip(alternating, fixed))


def test_each_model_keeps_its_own_record():
    a, b = models.lenet(seed=0), models.lenet(seed=0)
    assert _threads.choice_for(a) is _threads.choice_for(a)
    assert _threads.choice_for(a) is not _threads.choice_for(b)
    assert isinstance(_threads.choice_for(object.__new__(type("Slotted", (), {"__slots__": ()}))), ThreadChoice)


def test_other_processes_on_a_core_mean_one_thread_without_trials():
    """A busy process beside the training (others >= BUSY cores over WINDOW seconds): every step on one thread,
    no trial on two (each would cost 100+ ms); when it stops, the choice tries both again."""
    choice = ThreadChoice()
    choice.watch_others(now=0.0, cpu=(100.0, 1.0))
    choice.watch_others(now=1.0, cpu=(101.9, 1.95))  # all processes 1.9 CPU-s in 1 s, this one 0.95: others 0.95
    assert abs(choice.others - 0.95) < 1e-9
    picked = [choice.pick(2) for _ in range(3 * _threads.PROBE_EVERY)]
    assert picked == [1] * len(picked)
    choice.watch_others(now=2.0, cpu=(102.95, 2.9))  # then the others use 0.1 core
    assert abs(choice.others - 0.1) < 1e-9
    assert choice.pick(2) == 2  # trying two threads again (no step on two recorded yet)


def test_the_busy_rule_scales_with_the_threads():
    """Half of the other most - 1 cores: 0.5 for 2 threads, 3.5 for 8 (one busy core among 8 leaves the probes to
    decide)."""
    choice = ThreadChoice()
    choice.others = 1.0
    assert choice.pick(2) == 1
    assert choice.pick(8) == 8  # below 3.5 cores: the usual tries, the first on all threads
    choice.others = 3.5
    assert choice.pick(8) == 1


def test_others_are_measured_only_once_a_window_has_passed():
    choice = ThreadChoice()
    choice.watch_others(now=0.0, cpu=(10.0, 1.0))
    choice.watch_others(now=_threads.WINDOW / 2, cpu=(11.0, 1.0))  # too short a window: not measured yet
    assert choice.others == 0.0
    choice.watch_others(now=_threads.WINDOW, cpu=(10.0 + _threads.WINDOW, 1.0))
    assert abs(choice.others - 1.0) < 1e-9


def test_cpu_seconds_reads_proc_stat_where_there_is_one():
    import os

    got = _REAL_CPU_SECONDS()
    if not os.path.exists("/proc/stat"):
        assert got is None
    else:
        assert got[0] > 0 and got[1] >= 0


def test_a_busy_machine_is_seen_after_the_first_step(monkeypatch):
    """The window of the others' CPU use starts at the first pick, so the untimed first step (often longer than a
    window) is enough to see a busy process: no trial step on two threads (170 ms each under load, measured)."""
    clock = {"now": 0.0}
    readings = iter([(100.0, 1.0), (100.0 + 0.6 * 1.9, 1.0 + 0.6 * 0.95)])  # the others: 0.95 of a core
    monkeypatch.setattr(_threads, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))  # _threads' clock only
    monkeypatch.setattr(_threads, "cpu_seconds", lambda: next(readings))
    choice = ThreadChoice()
    assert choice.pick(2) == 2  # the first step, untimed, on all threads
    clock["now"] = 0.6
    choice.record(2, 0.6, 256)
    assert abs(choice.others - 0.95) < 1e-9
    assert choice.pick(2) == 1
