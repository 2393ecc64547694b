"""`explore cuda` (numbacnn.explore.cuda_page): explore conv's convolution on a GPU, thread by thread: the real
CUDA kernels 1 and 2 of conv2d watched under Numba's CUDA simulator (numbacnn.trace.cuda_observe), for every
preset input and kernel and two block sizes.

Per run the page holds what the observer saw: who wrote each output (block, thread), each (block, barrier phase)'s
global reads of x, shared-memory writes (with the values) and reads, and every thread's counts. Needs the
simulator (NUMBA_ENABLE_CUDASIM=1 before numba is imported; `numbacnn explore cuda` switches it on itself).
"""
from __future__ import annotations

import numpy as np

from .page import build, f32, ints

INPUTS = ("d2l-edge", "checker", "digit")
KERNELS = ("edge", "sobel-x", "laplacian")
BLOCKS = {1: (8, 16), 2: (2, 4)}  # conv2d kernel -> block sizes offered: threads per 1-D block, or tile side
COUNTS = ("global reads", "global writes", "shared reads", "shared writes")


def _run(x, w, kernel, size):
    """Observe numbacnn.conv2d's CUDA kernel ``kernel`` on x (1, 1, H, W), w (1, 1, KH, KW): a dict for the page."""
    from ..cuda import config
    from ..trace import trace_conv2d

    with config.override(threads_per_block=size if kernel == 1 else 16, tile=size if kernel == 2 else 4):
        t = trace_conv2d(x, w, device="cudasim", kernel=kernel)
    cu = t.meta["cuda"]
    names = [a[0] for a in cu["arrays"]]
    shared = [k for k, a in enumerate(cu["arrays"]) if a[1] == "shared"]
    code, flat, blk, thr, phase, write = t.access.T
    x_code, y_code = names.index("x"), names.index("y")
    per_block = int(np.prod(cu["block"]))
    thread_key = blk * per_block + thr
    is_shared = np.isin(code, shared)
    frames = sorted({(int(b), int(p)) for b, p in zip(blk, phase)})
    out = dict(grid=cu["grid"], block=cu["block"], name=cu["kernel"], totals={k: cu["counts"][k] for k in COUNTS},
               races=cu["counts"]["races"], oob=cu["counts"]["out-of-bounds"], y=f32(t.out), frames=ints(frames))
    HO, WO = t.out.shape[2:]
    writer = np.full((HO * WO, 2), -1, np.int64)
    sel = (code == y_code) & (write == 1)
    writer[flat[sel]] = np.stack([blk[sel], thr[sel]], axis=1)
    out["writer"] = ints(writer)
    frame_of = {f: k for k, f in enumerate(frames)}
    per_frame = {"xr": [[] for _ in frames], "sw": [[] for _ in frames], "sr": [[] for _ in frames],
                 "ow": [[] for _ in frames]}
    for k in range(len(code)):
        f = frame_of[(int(blk[k]), int(phase[k]))]
        if code[k] == x_code and not write[k]:
            per_frame["xr"][f].append(int(flat[k]))
        elif code[k] in shared and write[k]:
            per_frame["sw"][f].append([int(flat[k]), float(t.access_value[k])])
        elif code[k] in shared:
            per_frame["sr"][f].append(int(flat[k]))
        elif code[k] == y_code and write[k]:
            per_frame["ow"][f].append([int(flat[k]), int(thr[k])])
    out.update({k: [sorted(set(v)) if k in ("xr", "sr") else v for v in vals] for k, vals in per_frame.items()})
    # per thread that wrote an output: its counts and the x cells it read from global memory
    threads = {}
    for b, th in {tuple(v) for v in writer.tolist()}:
        rows = thread_key == b * per_block + th
        reads = rows & ~is_shared & (write == 0)
        by_array = {names[a]: int((code[reads] == a).sum()) for a in np.unique(code[reads])}
        threads[f"{b},{th}"] = dict(
            counts=[int((rows & (is_shared == ("shared" in n)) & (write == ("writes" in n))).sum()) for n in COUNTS],
            by_array=by_array, x=sorted({int(v) for v in flat[reads & (code == x_code)]}),
            s=sorted({int(v) for v in flat[rows & is_shared & (write == 0)]}))
    out["threads"] = threads
    if cu["kernel"] == "conv2d_forward_kernel2":
        T = cu["block"][0]
        KH, KW = w.shape[2:]
        out["patch"] = [T + KH - 1, T + KW - 1, KH, KW]  # stride and dilation 1: PH = T + KH - 1
    return out


def cuda_data() -> dict:
    """Every run the page offers: input x kernel x CUDA kernel x block size."""
    from .. import scenarios
    from ..trace.cuda_observe import _simulator

    _simulator()  # a clear error when the simulator is off
    data = {"inputs": {}, "kernels": {}, "blocks": {str(k): list(v) for k, v in BLOCKS.items()}, "runs": {}}
    for iname in INPUTS:
        X = scenarios.preset_input(iname).astype(np.float32)
        data["inputs"][iname] = {"h": X.shape[0], "w": X.shape[1], "x": f32(X)}
        for kname in KERNELS:
            K = scenarios.parse_kernel(kname).astype(np.float32)
            data["kernels"][kname] = {"kh": K.shape[0], "kw": K.shape[1], "w": f32(K)}
            for kernel, sizes in BLOCKS.items():
                for size in sizes:
                    data["runs"][f"{iname}|{kname}|{kernel}|{size}"] = _run(X[None, None], K[None, None], kernel,
                                                                              size)
    return data


def page(input="d2l-edge", kernel="edge", cuda_kernel=2):
    """The CUDA view of explore conv (a numbacnn.explore.page.Page); the keywords pick the first run shown."""
    for name, value, allowed in (("input", input, INPUTS), ("kernel", kernel, KERNELS),
                                 ("cuda_kernel", cuda_kernel, tuple(BLOCKS))):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    data = cuda_data()
    data["start"] = dict(input=input, kernel=kernel, cuda=str(cuda_kernel))
    intro = ("The convolution of <i>explore conv</i>, computed by numbacnn's CUDA kernels and watched thread by "
             "thread in Numba's CUDA simulator (the same <code>@cuda.jit</code> code a GPU runs). <b>Kernel 1</b> "
             "is the formula: one thread per output, reading its window from global memory. <b>Kernel 2</b> tiles "
             "the output: each block copies the input patch and the weights it needs into shared memory once, "
             "waits at <code>cuda.syncthreads()</code>, then computes from shared memory. Scrub through the "
             "blocks and barrier phases; hover an output cell for the thread that wrote it and what it read. "
             "Every count was observed (<code>numbacnn cuda-check conv2d --kernel N</code> prints them too). "
             '<a href="https://d2l.ai/chapter_convolutional-neural-networks/conv-layer.html">D2L 6.2</a>')
    return build("cuda", "numbacnn explore cuda: a convolution, thread by thread", intro, data)
