"""Interactive explorer pages (numbacnn.explore): one self-contained HTML file per topic, where a learner turns
the knobs and sees numbacnn's kernels' own numbers (computed when the page is written; the page only looks them up).

    numbacnn.explore.conv()            padding, stride, dilation, flip, channels/groups, forward/backward
    numbacnn.explore.pool()            max / avg / min pooling, window, stride, padding, ceil_mode, backward routing
    numbacnn.explore.sgd()             plain SGD, momentum and Nesterov on a 2-D loss, every hyperparameter
    numbacnn.explore.run("run.nctrace") a training run recorded by numbacnn.trace.Tracer
    numbacnn.explore.cuda()            conv2d's CUDA kernels 1 and 2 watched thread by thread (needs the simulator)

Each returns a ``Page``: ``.save("page.html")``, or leave it last in a Jupyter cell to show it inline.
The command line is ``numbacnn explore conv|pool|sgd|cuda|RUN.nctrace [-o page.html]``.
"""
from __future__ import annotations


def conv(input="d2l-edge", kernel="edge", **options):
    """The conv explorer page; see numbacnn.explore.conv_page.page for the options."""
    from .conv_page import page

    return page(input, kernel, **options)


def pool(input="digits", mode="max", **options):
    """The pool explorer page; see numbacnn.explore.pool_page.page for the options."""
    from .pool_page import page

    return page(input, mode, **options)


def sgd(surface="quadratic", **options):
    """The SGD explorer page; see numbacnn.explore.sgd_page.page for the options."""
    from .sgd_page import page

    return page(surface, **options)


def run(path, **options):
    """The page of a recorded training run (a trace folder); see numbacnn.explore.run_page.page."""
    from .run_page import page

    return page(path, **options)


def cuda(input="d2l-edge", kernel="edge", cuda_kernel=2):
    """The CUDA view of the conv explorer (run under NUMBA_ENABLE_CUDASIM=1); see numbacnn.explore.cuda_page.page."""
    from .cuda_page import page

    return page(input, kernel, cuda_kernel)
