"""Tracing overhead and trace size for LeNet training at batch 256 (default sampling vs no tracing).

    python benchmarks/trace_overhead.py [--steps-per-block 50] [--rounds 2] [--every 50] [--samples 4]

Alternates blocks of untraced and traced training steps on the same model (so machine noise hits both), and
projects the on-disk size of a full 10-epoch run (2350 steps) from the measured bytes of one recorded step.
Random images stand in for Fashion-MNIST: the cost of tracing depends on shapes, not on pixel values.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from numbacnn.models import lenet  # noqa: E402
from numbacnn.optim import SGD  # noqa: E402
from numbacnn.trace import DEFAULT_EVERY, DEFAULT_SAMPLES, Tracer, load  # noqa: E402
from numbacnn.train import train_batch  # noqa: E402

FULL_RUN_STEPS = 2350  # 10 epochs of 60000 images at batch 256 (235 batches each)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps-per-block", type=int, default=DEFAULT_EVERY)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--every", type=int, default=DEFAULT_EVERY)
    ap.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch_size)
    model = lenet(seed=0)
    opt = SGD(model.parameters(), lr=0.9, momentum=0.9)
    for _ in range(3):  # compile every kernel first
        train_batch(model, opt, x, y)
    plain, traced = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.nctrace")
        tracer = Tracer(model, opt, path, every=args.every, samples=args.samples, meta={"batch_size": args.batch_size})
        tracer._detach()  # unsubscribed (model observer and optimizer step hooks) while timing the untraced blocks
        hook_time = [0.0]  # seconds spent inside the tracer's own code (hooks + snapshots + writes)

        def timed(fn):
            def wrapper(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    hook_time[0] += time.perf_counter() - t0
            return wrapper

        tracer.on_forward, tracer.on_backward = timed(tracer.on_forward), timed(tracer.on_backward)
        tracer._before_step, tracer._after_step = timed(tracer._before_step), timed(tracer._after_step)
        tracer.log = timed(tracer.log)
        for r in range(args.rounds):
            for mode in ("plain", "traced"):
                if mode == "traced":
                    tracer._attach()
                t0 = time.perf_counter()
                for _ in range(args.steps_per_block):
                    loss, correct = train_batch(model, opt, x, y)
                    if mode == "traced":
                        tracer.log(loss=loss, acc=correct / args.batch_size)
                (traced if mode == "traced" else plain).append(time.perf_counter() - t0)
                if mode == "traced":
                    tracer._detach()
                print(f"round {r + 1} {mode:>6}: {(traced if mode == 'traced' else plain)[-1]:.2f} s for "
                      f"{args.steps_per_block} steps", flush=True)
        tracer._attach()
        tracer.close()
        t = load(path)
        per_step = max(t.manifest["step_bytes"])
        recorded_full = math.ceil(FULL_RUN_STEPS / args.every)
        projected = recorded_full * per_step + FULL_RUN_STEPS * 24 + 4096
        overhead = (sum(traced) - sum(plain)) / sum(plain) * 100
        direct = hook_time[0] / sum(traced) * 100
        print(f"\nLeNet, batch {args.batch_size}, every={args.every}, samples={args.samples}: "
              f"{sum(plain) / (args.rounds * args.steps_per_block) * 1e3:.1f} ms/step untraced, "
              f"{sum(traced) / (args.rounds * args.steps_per_block) * 1e3:.1f} ms/step traced: "
              f"overhead {overhead:+.1f}% (wall clock, includes machine noise); time inside the tracer: "
              f"{hook_time[0]:.3f} s = {direct:.2f}% of the traced blocks")
        print(f"one recorded step: {per_step / 1e6:.2f} MB on disk; full 10-epoch run ({FULL_RUN_STEPS} steps, "
              f"{recorded_full} recorded): about {projected / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
