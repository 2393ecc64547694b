"""Timing helpers: alternate two callables, take medians, measure the float32 matrix-product peak."""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np


CLOCKS = {
    "wall": time.perf_counter,     # elapsed time: what a user waits for (the default)
    "cpu": time.process_time,      # CPU time of this process, all threads: robust on a busy machine, but it
                                   # also counts threads that spin while waiting (use it with --threads 1)
}


def timed(fn, sync=None, clock=time.perf_counter):
    """Seconds one call of ``fn`` takes (``sync`` runs before the clock starts and before it stops)."""
    if sync is not None:
        sync()
    t0 = clock()
    fn()
    if sync is not None:
        sync()
    return clock() - t0


def alternate(fns, syncs, *, warmup=2, repeats=15, min_time=0.0, clock=time.perf_counter):
    """Median seconds per call of each function in ``fns``, timed in turns (a, b, a, b, ...).

    Each function runs ``warmup`` times first (JIT compilation, caches, allocator). Alternating
    spreads the noise of a shared machine over all of them alike. Functions that are None give None.
    ``min_time`` keeps repeating (up to 10x ``repeats``) until every function has that many seconds.
    """
    live = [(i, f, s) for i, (f, s) in enumerate(zip(fns, syncs)) if f is not None]
    for _ in range(warmup):
        for _, f, s in live:
            timed(f, s, clock)
    samples = {i: [] for i, _, _ in live}
    rounds = 0
    while rounds < repeats or (min_time and rounds < 10 * repeats
                               and min(sum(v) for v in samples.values()) < min_time):
        for i, f, s in (live if rounds % 2 == 0 else live[::-1]):
            samples[i].append(timed(f, s, clock))
        rounds += 1
    return [statistics.median(samples[i]) if i in samples else None for i in range(len(fns))]


def matmul_peak(torch=None, device="cpu", n=2048, repeats=5):
    """Float32 GFLOP/s of an n x n matrix product: {'numpy': ..., 'torch': ...} (the libraries' BLAS)."""
    out = {}
    flops = 2.0 * n ** 3
    if device == "cpu":
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        out["numpy"] = flops / alternate([lambda: a @ a], [None], warmup=1, repeats=repeats)[0] / 1e9
        if torch is not None:
            t = torch.from_numpy(a)
            out["torch"] = flops / alternate([lambda: t @ t], [None], warmup=1, repeats=repeats)[0] / 1e9
    else:
        n = max(n, 8192)
        flops = 2.0 * n ** 3
        if torch is not None:
            t = torch.randn(n, n, device="cuda", dtype=torch.float32)
            torch.backends.cuda.matmul.allow_tf32 = False
            out["torch"] = flops / alternate([lambda: t @ t], [torch.cuda.synchronize], warmup=2,
                                             repeats=repeats)[0] / 1e9
    return out


def cpu_name():
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """numpy's BLAS as one line (name, version, the OpenBLAS core it picked when threadpoolctl is present)."""
    try:
        import threadpoolctl

        infos = threadpoolctl.threadpool_info()
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
                         f"{i.get('num_threads')} threads" for i in infos if i.get("user_api") == "blas")
    except ImportError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # pragma: no cover - older numpy
        return "unknown"


def openblas_env():
    """The OpenBLAS variables that slow a current numpy when set (see run.py's re-exec)."""
    return {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
