"""Plain NumPy versions of every op (numbacnn.reference), written like D2L chapter 6: the teaching text, first oracle."""
from .conv import conv2d, conv2d_backward, corr2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1
from .functional import (cross_entropy, cross_entropy_backward, linear, linear_backward, log_softmax, relu,
                         relu_backward, sigmoid, sigmoid_backward, tanh, tanh_backward)
from .optim import sgd
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
                   adaptive_max_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
                   min_pool2d, min_pool2d_backward, pool2d)
