"""Pooling (placeholder until the pooling kernels land)."""


def _todo(*a, **k):
    raise NotImplementedError("pooling is being written")


max_pool2d = max_pool2d_backward = min_pool2d = min_pool2d_backward = _todo
avg_pool2d = avg_pool2d_backward = _todo
adaptive_avg_pool2d = adaptive_avg_pool2d_backward = adaptive_max_pool2d = adaptive_max_pool2d_backward = _todo
