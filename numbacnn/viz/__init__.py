"""Animations drawn from traces of numbacnn's kernels (numbacnn.viz draws; it never computes the numbers).

Each function builds one matplotlib figure and returns an ``Animation``: ``len(anim)`` frames,
``anim.save("out.gif" | ".mp4" | ".html" | ".png", fps=2)``, and inline playback in Jupyter.

    conv(op_trace)           sliding-window conv2d (numbacnn.trace.trace_conv2d), forward or backward
    pool(op_trace, ...)      pooling windows (numbacnn.trace.trace_pool2d); several traces side by side
    learn_kernel(record)     D2L 6.2.4 (numbacnn.scenarios.learn_kernel)
    sgd_paths(run)           SGD / momentum / Nesterov on a 2-D loss (numbacnn.scenarios.sgd_paths)
    sgd_trace(trace, ...)    a parameter's gradient and momentum buffer from a training trace
    features(trace, ...)     one example's feature maps through the network across training steps
    cuda_grid(op_trace)      which CUDA block and thread computed each output element
    preload()                import matplotlib ahead of time (the CLI does it while the kernels run)
"""
from ._anim import Animation, preload
from ._save import FORMATS, SaveError
from .conv import conv
from .cuda_grid import cuda_grid
from .features import features
from .learn import learn_kernel
from .pool import pool
from .sgd import sgd_paths, sgd_trace

__all__ = ["Animation", "FORMATS", "SaveError", "conv", "cuda_grid", "features", "learn_kernel", "pool", "preload",
           "sgd_paths", "sgd_trace"]
