"""numbacnn.speedups.keep_freed_memory: freed arrays' memory is reused (few page faults), and it is switchable."""
import json
import os
import subprocess
import sys

import pytest

STEPS = r"""
import json, resource, sys
import numpy as np
from numbacnn import models, optim, speedups, train
if sys.argv[1] == "plain":
    speedups._MALLOC_TUNED.append("skipped")  # as if done: train_step leaves glibc's defaults
net = models.lenet(seed=0)
opt = optim.SGD(net.parameters(), lr=0.1)
rng = np.random.default_rng(0)
x, y = rng.random((256, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 256)
for _ in range(3):
    train.train_step(net, opt, x, y)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    train.train_step(net, opt, x, y)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode, **env):
    proc = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                          env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    plain = _faults("plain")
    tuned = _faults("tuned")
    # 10 LeNet steps at batch 256: glibc's defaults fault about a thousand pages a step in again; tuned, the
    # freed arrays' pages are reused
    assert plain > 10 * 300
    assert tuned < plain / 3
    assert _faults("tuned", NUMBACNN_SPEEDUPS="0") > 10 * 300  # the switch gives the plain path


def test_it_is_called_by_training(monkeypatch):
    import numpy as np

    from numbacnn import models, optim, speedups, train

    calls = []
    monkeypatch.setattr(train, "keep_freed_memory", lambda: calls.append(1))
    net = models.lenet(seed=0)
    x = np.zeros((2, 1, 28, 28), np.float32)
    train.train_step(net, optim.SGD(net.parameters(), lr=0.1), x, np.array([0, 1]))
    assert calls == [1]
    speedups.keep_freed_memory()
    speedups.keep_freed_memory()  # once per process: a second call does nothing
    assert speedups._MALLOC_TUNED == [True]
