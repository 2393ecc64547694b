"""API fuzzing on the CUDA path (tests/fuzz/test_fuzz_api_cudasim.py): the issue's cases with device arrays, run by
Numba's CUDA simulator in a child process (NUMBA_ENABLE_CUDASIM=1 must be set before numba loads).

sgd checks every device array it writes before any kernel launches; a NumPy momentum buffer given with CUDA
parameters moves to the device (the list entry is replaced) so its momentum is kept; relu keeps NaN; the
cross-entropy backward of an infinite grad_out is NaN at the label; sizes are checked before allocation.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from fuzz_tally import tally

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from numba import cuda as ncuda
    import numbacnn as nc
    from numbacnn import cuda, optim

    def r(*s):
        return np.random.default_rng(0).standard_normal(s).astype("f4")

    def err(f):
        try:
            f()
        except Exception as e:
            return [type(e).__name__, str(e)]
        return ["none", ""]

    out = {}
    P = ncuda.to_device(r(3))
    out["buffer wrong shape"] = err(lambda: optim.sgd([P], [r(3)], [ncuda.to_device(np.zeros(1, "f4"))], lr=.1,
                                                      momentum=.9))
    out["host buffer wrong shape"] = err(lambda: optim.sgd([P], [r(3)], [np.zeros(1, "f4")], lr=.1, momentum=.9))
    out["int64 buffer"] = err(lambda: optim.sgd([P], [r(3)], [ncuda.to_device(np.zeros(3, "i8"))], lr=.1,
                                                momentum=.9))
    out["complex grad"] = err(lambda: optim.sgd([P], [r(3) + 1j], [None], lr=.1))
    out["device grad wrong shape"] = err(lambda: optim.sgd([P], [ncuda.to_device(r(4))], [None], lr=.1))
    out["string grad"] = err(lambda: optim.sgd([P], ["abc"], [None], lr=.1))
    out["host param among device ones"] = err(lambda: optim.sgd([P, r(3)], [r(3), r(3)], [None, None], lr=.1))
    out["params untouched"] = [bool(np.array_equal(P.copy_to_host(), r(3))), ""]
    p1, p2, b1, b2 = ncuda.to_device(np.ones(3, "f4")), np.ones(3, "f4"), [np.zeros(3, "f4")], [np.zeros(3, "f4")]
    for s in range(3):
        g = r(3) * (s + 1)
        optim.sgd([p1], [g], b1, lr=.1, momentum=.9)
        optim.sgd([p2], [g], b2, lr=.1, momentum=.9)
    out["host buffer keeps momentum"] = [bool(np.allclose(p1.copy_to_host(), p2, rtol=1e-6)), ""]
    out["relu nan"] = cuda.to_host(nc.relu(np.array([np.nan, -1, 2], "f4"), device="cuda")).tolist()
    out["relu_backward nan x"] = cuda.to_host(nc.relu_backward(np.ones(2, "f4"), np.array([np.nan, 0], "f4"),
                                                               device="cuda")).tolist()
    out["ce backward inf"] = cuda.to_host(nc.cross_entropy_backward(np.inf, np.zeros((1, 2), "f4"), [0],
                                                                    device="cuda")).tolist()
    out["ce backward string"] = err(lambda: nc.cross_entropy_backward("x", np.zeros((1, 2), "f4"), [0], device="cuda"))
    out["conv2d padding=30000"] = err(lambda: nc.conv2d(r(1, 1, 4, 4), r(1, 1, 3, 3), padding=30000, device="cuda"))
    out["relu complex"] = err(lambda: nc.relu(np.ones(2, "c8"), device="cuda"))
    m = nc.nn.Linear(3, 2).to("cuda")
    opt = optim.SGD(m.parameters(), lr=.1, momentum=.9)
    out["load int buffer"] = err(lambda: opt.load_state_dict({"momentum_buffers": [np.zeros((2, 3), "i8"), None]}))
    opt.load_state_dict({"momentum_buffers": [np.zeros((2, 3)), None]})
    b = opt.state[m.weight]["momentum_buffer"]
    out["loaded buffer on the device, float32"] = [bool(cuda.is_device(b)) and str(b.dtype) == "float32", ""]
    print("RESULT" + json.dumps(out, default=str))
""")


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"the simulator run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


ERRORS = [  # (case, class, error type, words the message must hold)
    ("buffer wrong shape", "crash", "ValueError", ["momentum_buffers[0]", "(1,)"]),
    ("host buffer wrong shape", "crash", "ValueError", ["momentum_buffers[0]"]),
    ("int64 buffer", "crash", "TypeError", ["momentum_buffers[0]", "int64"]),
    ("complex grad", "wrong result", "TypeError", ["grads[0]", "complex"]),
    ("device grad wrong shape", "crash", "ValueError", ["grads[0]", "(4,)"]),
    ("string grad", "raw error", "TypeError", ["grads[0]"]),
    ("host param among device ones", "crash", "TypeError", ["params[1]"]),
    ("ce backward string", "raw error", "TypeError", ["grad_out", "'x'"]),
    ("conv2d padding=30000", "raw error", "ValueError", ["padding=30000", "GiB"]),
    ("relu complex", "wrong result", "TypeError", ["x", "complex64"]),
    ("load int buffer", "crash", "TypeError", ["momentum_buffers'][0]", "int64"]),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_cuda_path_refuses_bad_arrays(results, case):
    name, kind, exc, needles = case
    tally("api", kind)
    got_type, msg = results[name]
    assert got_type == exc, f"{name}: expected {exc}, got {got_type}: {msg}"
    assert "\n" not in msg.strip() and all(n in msg for n in needles), f"{name}: {msg!r}"


def test_cuda_path_results(results):
    tally("api", "wrong result", 6)
    assert results["params untouched"][0], "a refused sgd call changed a device parameter"
    assert results["host buffer keeps momentum"][0], "a NumPy momentum buffer with CUDA parameters lost momentum"
    relu = results["relu nan"]
    assert str(relu[0]) == "nan" or relu[0] != relu[0], relu
    assert relu[1:] == [0.0, 2.0]
    assert results["relu_backward nan x"] == [1.0, 0.0]
    ce = results["ce backward inf"][0]
    assert (str(ce[0]) == "nan" or ce[0] != ce[0]) and ce[1] == float("inf"), ce
    assert results["loaded buffer on the device, float32"][0]
