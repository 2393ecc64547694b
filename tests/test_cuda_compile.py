"""Every @cuda.jit kernel compiles for a real GPU (typed and lowered to NVVM IR), float32 and float64, no GPU needed.

The simulator runs kernels as Python, so it cannot catch what the CUDA compiler rejects; this test can. It uses
numba-cuda's compile step (``compile_cuda``) up to LLVM IR, which needs neither a GPU nor the CUDA toolkit.
"""
import importlib
import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                                reason="the simulator replaces numba.cuda's compiler")

MODULES = ["numbacnn.cuda.conv", "numbacnn.cuda.functional", "numbacnn.cuda.optim", "numbacnn.cuda.pool"]

# Argument kinds: X<d> a float array of d dims (the dtype under test), I<d> int64 array, D1 float64 vector,
# i int64, b bool, f a float scalar of the dtype, d float64 scalar.
GEOMETRY = "i i i i i i i"
SIGNATURES = {
    "conv2d_forward_kernel1": f"X4 X4 X1 X4 {GEOMETRY}",
    "conv2d_forward_kernel2": f"X4 X4 X1 X4 {GEOMETRY}",
    "conv2d_grad_input_kernel1": f"X4 X4 X4 {GEOMETRY}",
    "conv2d_grad_weight_kernel1": f"X4 X4 X4 {GEOMETRY}",
    "conv2d_grad_weight_kernel2": f"X4 X4 X4 {GEOMETRY}",
    "channel_sum_kernel1": "X4 X1",
    "channel_sum_kernel2": "X4 X1",
    "flip_kernel1": "X4 X4",
    "linear_forward_kernel1": "X2 X2 X1 X2 b",
    "linear_grad_input_kernel1": "X2 X2 X2",
    "linear_grad_weight_kernel1": "X2 X2 X2",
    "linear_matmul_kernel2": "X2 b X2 b X1 b X2",
    "copy2d_kernel1": "X2 X2",
    "relu_forward_kernel1": "X1 X1", "sigmoid_forward_kernel1": "X1 X1", "tanh_forward_kernel1": "X1 X1",
    "relu_backward_kernel1": "X1 X1 X1", "sigmoid_backward_kernel1": "X1 X1 X1", "tanh_backward_kernel1": "X1 X1 X1",
    "sigmoid_backward_from_y_kernel1": "X1 X1 X1", "tanh_backward_from_y_kernel1": "X1 X1 X1",
    "cross_entropy_forward_kernel1": "X2 I1 D1",
    "cross_entropy_mean_kernel1": "D1 X1",
    "cross_entropy_mean_kernel2": "D1 X1",
    "cross_entropy_backward_kernel1": "X1 X2 I1 X2",
    "sgd_update_kernel1": "X1 X1 X1 b f f f f b b",
    "max_pool2d_forward_kernel1": "X4 X4 I4 i i i i i i i i d",
    "adaptive_max_pool2d_forward_kernel1": "X4 X4 I4",
    "max_pool2d_backward_kernel1": "X4 I4 X4 i i i i i i i i",
    "adaptive_max_pool2d_backward_kernel1": "X4 I4 X4",
    "avg_pool2d_forward_kernel1": "X4 X4 i i i i i i b i",
    "avg_pool2d_backward_kernel1": "X4 X4 i i i i i i b i",
    "adaptive_avg_pool2d_forward_kernel1": "X4 X4",
    "adaptive_avg_pool2d_backward_kernel1": "X4 X4",
}


def _kernels():
    found = {}
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name, obj in vars(mod).items():
            if "_kernel" in name and hasattr(obj, "py_func") and name[-1].isdigit():
                found[name] = obj
    return found


def _types(spec, dtype):
    from numba import types

    out = []
    for tok in spec.split():
        if tok[0] in "XID":
            base = {"X": dtype, "I": types.int64, "D": types.float64}[tok[0]]
            out.append(types.Array(base, int(tok[1]), "A"))
        else:
            out.append({"i": types.int64, "b": types.boolean, "f": dtype, "d": types.float64}[tok])
    return tuple(out)


@pytest.fixture(scope="module")
def compile_cuda():
    try:
        import numba.cuda.dispatcher as dispatcher
        from numba.cuda.compiler import compile_cuda
    except ImportError as exc:  # pragma: no cover - numba without numba-cuda
        pytest.skip(f"numba-cuda's compiler is not available: {exc}")

    class _Device:  # device functions ask the current device for its compute capability: pretend an H100
        compute_capability = (9, 0)

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device()
    yield compile_cuda
    dispatcher.get_current_device = saved


def test_every_kernel_has_a_signature_here():
    assert sorted(_kernels()) == sorted(SIGNATURES)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_kernel_compiles_for_the_gpu(compile_cuda, name, dtype_name):
    from numba import types

    kernel = _kernels()[name]
    cres = compile_cuda(kernel.py_func, types.void, _types(SIGNATURES[name], getattr(types, dtype_name)), cc=(9, 0))
    assert "define" in cres.library.get_llvm_str()
