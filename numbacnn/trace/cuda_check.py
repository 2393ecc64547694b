"""Run one CUDA op's real kernels under the simulator's observer and check them (numbacnn.trace.cuda_check).

``check("conv2d", kernel=2)`` builds a small seeded input that spans several blocks, runs the public op with
``device="cudasim"`` inside ``numbacnn.trace.cuda_observe.observe()``, compares the result with the CPU kernels,
and returns a ``CheckReport``: per-thread access counts, races, reads of shared memory nobody wrote,
out-of-bounds accesses. ``numbacnn cuda-check OP --kernel N`` prints it (exit 1 on any problem).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .cuda_observe import observe


@dataclass
class Sizes:
    """The input of a check: conv/pool (batch, channels, size) and kernel options; linear (features); classes."""

    batch: int = 2
    channels: int = 2
    out_channels: int = 3
    size: tuple = (7, 7)
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    dilation: int = 1
    groups: int = 1
    features: tuple = (20, 12)
    classes: int = 5


def _conv_args(s, rng):
    x = rng.standard_normal((s.batch, s.channels) + tuple(s.size)).astype(np.float32)
    w = rng.standard_normal((s.out_channels, s.channels // s.groups, s.kernel_size, s.kernel_size)).astype(np.float32)
    b = rng.standard_normal(s.out_channels).astype(np.float32)
    return x, w, b, dict(stride=s.stride, padding=s.padding, dilation=s.dilation, groups=s.groups)


def _pool_args(s, rng):
    x = rng.standard_normal((s.batch, s.channels) + tuple(s.size)).astype(np.float32)
    return x, dict(kernel_size=s.kernel_size, stride=s.stride, padding=min(s.padding, s.kernel_size // 2))


def _call(op, s, device, kernel, rng):
    """Run public op ``op`` on ``device`` with kernel ``kernel``; a tuple of its array results (host or device)."""
    import numbacnn as nc
    from numbacnn import optim

    k = dict(device=device, kernel=kernel)
    if op in ("conv2d", "conv2d_backward"):
        x, w, b, opts = _conv_args(s, rng)
        if op == "conv2d":
            return (nc.conv2d(x, w, b, **opts, **k),)
        gy = rng.standard_normal(nc.conv2d(x, w, b, **opts).shape).astype(np.float32)
        return nc.conv2d_backward(gy, x, w, b, **opts, **k)
    if op == "corr2d":
        return (nc.corr2d(rng.standard_normal(s.size).astype(np.float32),
                          rng.standard_normal((s.kernel_size, s.kernel_size)).astype(np.float32), **k),)
    if op.startswith("adaptive"):
        x = rng.standard_normal((s.batch, s.channels) + tuple(s.size)).astype(np.float32)
        out = (max(1, s.size[0] // 2), max(1, s.size[1] // 2))
        forward = getattr(nc, op.replace("_backward", ""))
        if not op.endswith("_backward"):
            return (forward(x, out, **k),)
        gy = rng.standard_normal(forward(x, out).shape).astype(np.float32)
        return (getattr(nc, op)(gy, x, out, **k),)
    if "pool2d" in op:
        x, opts = _pool_args(s, rng)
        forward = getattr(nc, op.replace("_backward", ""))
        if not op.endswith("_backward"):
            return (forward(x, **opts, **k),)
        gy = rng.standard_normal(forward(x, **opts).shape).astype(np.float32)
        return (getattr(nc, op)(gy, x, **opts, **k),)
    if op in ("linear", "linear_backward"):
        fin, fout = s.features
        x = rng.standard_normal((s.batch * 4, fin)).astype(np.float32)
        w = rng.standard_normal((fout, fin)).astype(np.float32)
        b = rng.standard_normal(fout).astype(np.float32)
        if op == "linear":
            return (nc.linear(x, w, b, **k),)
        return nc.linear_backward(rng.standard_normal((s.batch * 4, fout)).astype(np.float32), x, w, b, **k)
    if op in ("relu", "sigmoid", "tanh", "relu_backward", "sigmoid_backward", "tanh_backward"):
        x = rng.standard_normal((s.batch, s.channels) + tuple(s.size)).astype(np.float32)
        if not op.endswith("_backward"):
            return (getattr(nc, op)(x, **k),)
        return (getattr(nc, op)(rng.standard_normal(x.shape).astype(np.float32), x, **k),)
    if op in ("cross_entropy", "cross_entropy_backward"):
        logits = rng.standard_normal((s.batch * 8, s.classes)).astype(np.float32)
        labels = rng.integers(0, s.classes, s.batch * 8)
        if op == "cross_entropy":
            return (nc.cross_entropy(logits, labels, **k),)
        return (nc.cross_entropy_backward(1.0, logits, labels, **k),)
    if op == "sgd":
        from numbacnn.cuda import to_device

        shapes = [(s.out_channels, s.channels, s.kernel_size, s.kernel_size), (s.out_channels,)]
        params = [rng.standard_normal(sh).astype(np.float32) for sh in shapes]
        grads = [[rng.standard_normal(sh).astype(np.float32) for sh in shapes] for _ in range(2)]
        if device != "cpu":
            params, grads = [to_device(p) for p in params], [[to_device(g) for g in gs] for gs in grads]
        buffers = [None, None]
        for gs in grads:  # two steps: the first fills the momentum buffers, the second uses them
            optim.sgd(params, gs, buffers, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True,
                      **k)
        return tuple(params) + tuple(buffers)
    raise ValueError(f"op must be one of {sorted(ops())}, got {op!r}")


def ops() -> dict:
    """Every CUDA op -> its kernel numbers (from the KERNELS tables of numbacnn.cuda.*)."""
    from numbacnn.cuda import conv, functional, optim, pool

    out = {}
    for module in (conv, pool, functional, optim):
        out.update(module.KERNELS)
    return out


@dataclass
class CheckReport:
    """What one ``check`` found. ``ok``: result equals the CPU kernels and no race / uninitialised read / OOB."""

    op: str
    kernel: int
    launches: list
    counts: dict
    per_thread: dict  # name -> int64 array over every launched thread (all launches)
    busiest: str
    problems: list
    max_error: float
    matches_cpu: bool
    sizes: Sizes = field(default_factory=Sizes)

    @property
    def ok(self) -> bool:
        c = self.counts
        return self.matches_cpu and not (c["races"] or c["out-of-bounds"] or c["uninitialised shared reads"])

    def summary_line(self) -> str:
        c = self.counts
        return (f"{self.op} kernel{self.kernel}: {c['global reads']:,} global reads, {c['global writes']:,} global "
                f"writes, {c['shared reads']:,} shared reads, {c['shared writes']:,} shared writes, {c['races']:,} "
                f"races, {c['out-of-bounds']:,} out-of-bounds, {c['uninitialised shared reads']:,} uninitialised "
                f"shared reads")

    def lines(self) -> list[str]:
        """The report as text lines (the CLI prints them; the last one is ``summary_line``)."""
        out = [f"{self.op} kernel {self.kernel} under Numba's CUDA simulator, every access observed:"]
        for la in self.launches:
            out.append(f"  launch {la.name}: grid {la.grid}, block {la.block} "
                       f"({int(np.prod(la.grid)) * int(np.prod(la.block)):,} threads)")
        out.append(f"  result vs the CPU kernels: {'equal' if self.matches_cpu else 'DIFFERENT'} "
                   f"(largest difference {self.max_error:.3g})")
        out.append(f"  per thread {'':22}{'min':>8}{'median':>8}{'max':>8}")
        for name, v in self.per_thread.items():
            if len(v):
                out.append(f"    {name:<30}{int(v.min()):>8}{float(np.median(v)):>8g}{int(v.max()):>8}")
        out.append(f"  busiest thread: {self.busiest}")
        out.extend(f"  PROBLEM: {p}" for p in self.problems)
        out.append(self.summary_line())
        return out


def _busiest(launches):
    best, text = -1, "none"
    for la in launches:
        counts = la.per_thread()
        total = sum(counts.values())
        if len(total) and int(total.max()) > best:
            k = int(total.argmax())
            per_block = int(np.prod(la.block))
            b, t = la.block_index(k // per_block), la.thread_index(k % per_block)
            best = int(total.max())
            text = (f"{la.name} blockIdx {tuple(int(v) for v in b)} threadIdx {tuple(int(v) for v in t)}: "
                    + ", ".join(f"{int(v[k])} {name}" for name, v in counts.items()))
    return text


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def check(op: str, kernel: int | None = None, sizes: Sizes | None = None, *, threads_per_block: int = 32,
          tile: int = 4, seed: int = 0) -> CheckReport:
    """Observe ``op``'s CUDA kernel ``kernel`` (None: the fastest) on a small input (``sizes``) with small blocks
    (``threads_per_block`` for 1-D launches, ``tile`` x ``tile`` for 2-D ones) so it spans several blocks."""
    from numbacnn._checks import check_kernel
    from numbacnn.cuda import config

    table = ops()
    if op not in table:
        raise ValueError(f"op must be one of {', '.join(sorted(table))}; got {op!r}")
    kernel = max(table[op]) if kernel is None else check_kernel(kernel, table[op], op)
    sizes = sizes or Sizes()
    with config.override(threads_per_block=threads_per_block, tile=tile), observe() as run:
        got = _call(op, sizes, "cudasim", kernel, np.random.default_rng(seed))
        got = [_host(a) for a in got if a is not None]
    want = [np.asarray(a) for a in _call(op, sizes, "cpu", None, np.random.default_rng(seed)) if a is not None]
    errors = [float(np.nanmax(np.abs(np.asarray(g, np.float64) - w))) if np.size(w) else 0.0
              for g, w in zip(got, want)]
    same = len(got) == len(want) and all(np.shape(g) == np.shape(w) and np.allclose(g, w, rtol=1e-4, atol=1e-5,
                                                                                   equal_nan=True)
                                         for g, w in zip(got, want))
    per_thread = {}
    for la in run.launches:
        for name, v in la.per_thread().items():
            per_thread[name] = np.concatenate([per_thread.get(name, np.zeros(0, np.int64)), v])
    return CheckReport(op, kernel, run.launches, run.counts(), per_thread, _busiest(run.launches), run.problems(),
                       max(errors, default=0.0), same, dataclasses.replace(sizes))
