"""One library in one fresh process (benchmarks/compare_worker.py): the worker that compare.py starts.

    python benchmarks/compare_worker.py --lib numbacnn --cases step-d2l,step-modern --threads 2 --repeats 15
    python benchmarks/compare_worker.py --lib torch --cases ops          # every op case of ops.py
    python benchmarks/compare_worker.py --lib both --cases step-d2l      # in-process alternation (a, b, b, a, ...)
    python benchmarks/compare_worker.py --lib check --cases step-d2l     # correctness only, no timing

Each timed case prints one JSON line: the seconds of every timed call (``samples``), their median, and
examples/s where the case has examples; the last line is ``{"type": "env", ...}`` (versions, the threading layer
Numba used, whether torch was loaded). ``--lib numbacnn`` never imports torch; ``--lib torch`` imports numbacnn
only for op cases (ops.op_cases builds both sides and runs two numbacnn kernels while building: with
NUMBA_NUM_THREADS=1, so no Numba thread pool sits beside torch's). Exit 2: an unknown case; exit 1: the correctness check failed.
"""
from __future__ import annotations

import os
import sys

# As run.py: these slow a current OpenBLAS; drop them before numpy is imported (os.environ also unsets them).
for _k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_k, None)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import timing  # noqa: E402

STEP_CASES = ("step-d2l", "step-modern")
LR = 0.9  # as benchmarks/training.py


def slug(text: str) -> str:
    """'linear 400->120 forward' -> 'linear-400-120-forward' (lower case, runs of other characters -> '-')."""
    out, dash = [], False
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def op_case_names(cases, batch: int) -> list[str]:
    """A unique name per ops.py Case: its name as a slug, plus the shape without the batch where names repeat
    ('sigmoid-forward-6x28x28', 'sigmoid-forward-120')."""
    names = [slug(c.name) for c in cases]
    out = []
    for name, case in zip(names, cases):
        if names.count(name) > 1:
            first = case.shape.replace(",", " ").split()[0]
            first = first[len(f"{batch}x"):] if first.startswith(f"{batch}x") else first
            name = f"{name}-{first}"
        out.append(name)
    return out


def step_data(batch: int, seed: int = 0):
    """The batch training.py times: uniform images (batch, 1, 28, 28) float32 and labels (batch,) int64."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, batch).astype(np.int64)


def nb_step(variant: str, x, y):
    """numbacnn's training step on (x, y) as a zero-argument callable (training.numbacnn_lenet)."""
    from training import numbacnn_lenet

    model, opt, train_step = numbacnn_lenet(variant, "cpu")
    return lambda: train_step(model, opt, x, y)


def torch_step_fn(torch, variant: str, x, y):
    """PyTorch's training step on (x, y) as a zero-argument callable (training.torch_lenet / torch_step)."""
    from training import torch_lenet, torch_step

    net = torch_lenet(torch, variant, "cpu")
    step = torch_step(torch, net, torch.optim.SGD(net.parameters(), lr=LR))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return lambda: step(tx, ty)


def build(names, lib: str, torch, batch: int):
    """[(name, numbacnn callable or None, torch callable or None, examples or None)] for the named cases.

    'ops' stands for every op case of ops.py. SystemExit(2) names an unknown case and lists the known ones."""
    x, y = step_data(batch)
    want_nb, want_th = lib in ("numbacnn", "both"), lib in ("torch", "both")
    out, ops = [], None
    for name in names:
        if name in STEP_CASES:
            variant = name.split("-", 1)[1]
            out.append((name, nb_step(variant, x, y) if want_nb else None,
                        torch_step_fn(torch, variant, x, y) if want_th else None, batch))
            continue
        if ops is None:
            from ops import Backend, op_cases

            cases = op_cases(Backend("cpu", torch if want_th else None), batch)
            ops = dict(zip(op_case_names(cases, batch), cases))
        picked = list(ops) if name == "ops" else [name] if name in ops else None
        if picked is None:
            sys.stderr.write(f"compare_worker: error: unknown case {name!r}; known: "
                             f"{', '.join(STEP_CASES + tuple(ops))}, or 'ops' for every op case\n")
            sys.exit(2)
        out += [(n, ops[n].nb if want_nb else None, ops[n].torch if want_th else None, None) for n in picked]
    return out


def time_calls(fns, warmup: int, repeats: int):
    """Seconds of each of ``repeats`` calls of every function in ``fns``, after ``warmup`` untimed calls each;
    several functions are called in turns, the order flipped every repeat (a, b, b, a, ...), as timing.alternate."""
    for _ in range(warmup):
        for f in fns:
            f()
    samples = [[] for _ in fns]
    for r in range(repeats):
        order = list(range(len(fns)))
        for i in (order if r % 2 == 0 else order[::-1]):
            samples[i].append(timing.timed(fns[i]))
    return samples


def result_line(name, lib, samples, examples):
    med = statistics.median(samples)
    line = {"type": "case", "case": name, "lib": lib, "samples": samples, "median": med}
    if examples:
        line["examples"] = examples
        line["examples_per_s"] = examples / med
    return json.dumps(line)


def max_mismatch(a, b, rtol: float, atol: float):
    """(number of elements outside atol + rtol * |b|, largest |a - b|, first few mismatches as text)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    bad = np.abs(a - b) > atol + rtol * np.abs(b)
    where = [tuple(int(j) for j in i) for i in np.argwhere(bad)[:3]]
    first = ", ".join(f"{i}: {a[i]:.7g} vs {b[i]:.7g}" for i in where)
    return int(bad.sum()), float(np.max(np.abs(a - b))) if a.size else 0.0, first


def check_steps(names, torch, batch: int, rtol: float, atol: float) -> dict:
    """One SGD step of numbacnn and of the reference from the same weights on the same batch: the loss and every
    updated parameter must agree. The reference is PyTorch, or without torch numbacnn's kernel 1 (the formula)."""
    import numbacnn as nc
    from numbacnn import models, optim, train

    x, y = step_data(batch)
    problems, worst = [], 0.0
    for variant in [n.split("-", 1)[1] for n in names if n in STEP_CASES]:
        model = models.lenet(variant, seed=0)
        init = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
        loss = train.train_step(model, optim.SGD(model.parameters(), lr=LR), x, y)
        if torch is not None:
            from training import torch_lenet, torch_step

            net = torch_lenet(torch, variant, "cpu")
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init.items()})
            step = torch_step(torch, net, torch.optim.SGD(net.parameters(), lr=LR))
            ref_loss = step(torch.from_numpy(x), torch.from_numpy(y)).item()
            ref = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        else:
            ref_model = models.lenet(variant, seed=0)
            ref_model.load_state_dict(init)
            with nc.formula_kernels():
                ref_loss = train.train_step(ref_model, optim.SGD(ref_model.parameters(), lr=LR), x, y)
            ref = ref_model.state_dict()
        pairs = [("loss", loss, ref_loss)] + [(k, v, ref[k]) for k, v in model.state_dict().items()]
        for key, got, want in pairs:
            n_bad, diff, first = max_mismatch(got, want, rtol, atol)
            worst = max(worst, diff)
            if n_bad:
                problems.append(f"{variant} {key}: {n_bad} element(s) differ beyond rtol {rtol:g}, atol {atol:g} "
                                f"(largest |difference| {diff:.3g}; first: {first})")
    return {"type": "check", "reference": "torch" if torch is not None else "numbacnn kernel 1 (formula)",
            "ok": not problems, "problems": problems, "max_abs_diff": worst}


def set_threads(lib: str, threads: int, torch):
    """Numba's and torch's intra-op threads (torch's inter-op pool: 1, where it can still be set)."""
    used = {}
    if lib != "torch" or "numba" in sys.modules:
        import numba

        numba.set_num_threads(1 if lib == "torch" else min(threads, numba.config.NUMBA_NUM_THREADS))
        used["numba_threads"] = numba.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work already ran
            pass
        used["torch_threads"] = torch.get_num_threads()
    return used


def env_line(lib: str, threads_used: dict) -> str:
    env = {"type": "env", "lib": lib, "pid": os.getpid(), "numpy": np.__version__,
           "torch_loaded": "torch" in sys.modules, "numba_loaded": "numba" in sys.modules, **threads_used}
    if "numba" in sys.modules:
        import numba

        env["numba"] = numba.__version__
        try:
            env["threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel ran in this process
            env["threading_layer"] = None
    if "torch" in sys.modules:
        env["torch"] = sys.modules["torch"].__version__
    return json.dumps(env)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", required=True, choices=("numbacnn", "torch", "both", "check"))
    p.add_argument("--cases", required=True, help="comma list: step-d2l, step-modern, an op case name, or 'ops'")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per case first (JIT, caches)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per case")
    p.add_argument("--rtol", type=float, default=1e-4, help="--lib check: relative tolerance")
    p.add_argument("--atol", type=float, default=1e-5, help="--lib check: absolute tolerance")
    p.add_argument("--no-torch", action="store_true", help="--lib check: compare with kernel 1, even with torch")
    args = p.parse_args(argv)
    for opt in ("threads", "batch", "repeats"):
        if getattr(args, opt) < 1:
            p.error(f"--{opt} must be at least 1, got {getattr(args, opt)}")
    if args.warmup < 0:
        p.error(f"--warmup must be at least 0, got {args.warmup}")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    torch = None
    if args.lib in ("torch", "both") or (args.lib == "check" and not args.no_torch):
        try:
            import torch
        except ImportError:
            if args.lib != "check":
                sys.exit(f"compare_worker: error: --lib {args.lib} needs torch, which is not installed")
    used = set_threads(args.lib, args.threads, torch)
    if args.lib == "check":
        result = check_steps(args.cases, torch, args.batch, args.rtol, args.atol)
        print(json.dumps(result))
        print(env_line(args.lib, used), flush=True)
        return 0 if result["ok"] else 1
    if args.lib == "torch":  # op cases run two numbacnn kernels while building: no Numba thread pool beside torch's
        os.environ["NUMBA_NUM_THREADS"] = "1"
    cases = build(args.cases, args.lib, torch, args.batch)
    used = set_threads(args.lib, args.threads, torch)  # numba may have been imported by the op cases
    for name, f_nb, f_th, examples in cases:
        fns = [f for f in (f_nb, f_th) if f is not None]
        libs = [lib for lib, f in (("numbacnn", f_nb), ("torch", f_th)) if f is not None]
        for lib, samples in zip(libs, time_calls(fns, args.warmup, args.repeats)):
            print(result_line(name, lib, samples, examples), flush=True)
    print(env_line(args.lib, used), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
