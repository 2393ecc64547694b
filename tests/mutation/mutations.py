"""The targeted mutations of tests/mutation/run.py (tests.mutation.mutations): deliberate bugs the tests must catch.

Each entry: ``name``; ``path`` (relative to the repository root); ``old``, the exact snippet to replace, and
``new``; ``count``, how many times ``old`` must occur (all are replaced; default 1, so a snippet that occurs
twice is an error unless ``count`` says so); ``tests``, the pytest arguments (files or node ids) that must go red;
``env``, extra environment variables (the simulator's tests need NUMBA_ENABLE_CUDASIM=1); ``what``, the bug in
words. When the code moves, refresh ``path`` / ``old``: run.py reports a snippet it cannot find as an error.
"""
from __future__ import annotations

SIM = {"NUMBA_ENABLE_CUDASIM": "1"}
COMMON = "numbacnn/commands/_common.py"

MUTATIONS = [
    # --- CLI pass-through (#19: survived before)
    dict(name="trace-cli-messages", path="numbacnn/commands/trace.py", count=3,
         old="fail(str(exc), 1)", new='fail("cannot read that trace", 1)',
         tests=["tests/test_trace_cli.py::test_bad_files_exit_1_without_traceback"],
         what="`numbacnn trace info|export` prints a generic message instead of the reader's"),
    dict(name="animate-trace-messages", path=COMMON,
         old="    except (TraceError, OSError) as exc:\n        fail(str(exc), 1)",
         new='    except (TraceError, OSError) as exc:\n        fail("cannot read that trace", 1)',
         tests=["tests/test_animate_cli.py::test_trace_commands_reject_bad_files"],
         what="`numbacnn animate features|sgd --trace` print a generic message instead of the reader's"),
    dict(name="animate-conv-stride", path="numbacnn/commands/animate.py",
         old="common = dict(stride=st, padding=pd, dilation=dl,", new="common = dict(padding=pd, dilation=dl,",
         tests=["tests/test_animate_cli.py::test_subcommands_write_each_format"],
         what="`animate conv` ignores --stride"),
    dict(name="animate-conv-padding", path="numbacnn/commands/animate.py",
         old="common = dict(stride=st, padding=pd, dilation=dl,", new="common = dict(stride=st, dilation=dl,",
         tests=["tests/test_animate_cli.py::test_subcommands_write_each_format"],
         what="`animate conv` ignores --padding"),
    dict(name="animate-conv-flip", path="numbacnn/commands/animate.py",
         old="flipped = trace_conv2d(x, w, b, flip=True, **common)",
         new="flipped = trace_conv2d(x, w, b, flip=False, **common)",
         tests=["tests/test_animate_cli.py::test_subcommands_write_each_format"],
         what="`animate conv --flip` draws the unflipped kernel beside itself"),
    dict(name="animate-pool-stride", path="numbacnn/commands/animate.py",
         old="trace_pool2d(x, m, ks, st, pd,", new="trace_pool2d(x, m, ks, None, pd,",
         tests=["tests/test_animate_cli.py::test_subcommands_write_each_format"],
         what="`animate pool` ignores --stride"),
    dict(name="train-lenet-test-acc", path="numbacnn/commands/train_lenet.py",
         old="test acc {test_acc:.3f}", new="test acc {train_acc:.3f}",
         tests=["tests/test_train.py::test_printed_accuracies_are_the_test_sets_and_the_epochs"],
         what='`train-lenet` prints the training accuracy as "test acc"'),
    # --- CUDA thread maps (cuda_map must follow the real kernels)
    dict(name="cuda-conv-tiled-planes", path="numbacnn/cuda/conv.py",
         old="n, o = cuda.blockIdx.z // O, cuda.blockIdx.z % O",
         new="o, n = cuda.blockIdx.z // N, cuda.blockIdx.z % N",
         tests=["tests/cudasim/test_trace_cuda.py"], env=SIM,
         what="the tiled CUDA conv kernel maps blockIdx.z to (n, o) as o * N + n (same sums, other blocks)"),
    dict(name="cuda-conv-kernel1-order", path="numbacnn/cuda/conv.py",
         old="    o = (t // (WO * HO)) % O\n    n = t // (WO * HO * O)\n",
         new="    o = (t // (WO * HO)) // N\n    n = (t // (WO * HO)) % N\n",
         tests=["tests/cudasim/test_trace_cuda.py"], env=SIM,
         what="CUDA conv kernel 1 counts the planes o-major (same sums, other threads)"),
    dict(name="cuda-pool-kernel1-order", path="numbacnn/cuda/pool.py", count=4,
         old="    c = (t // (WO * HO)) % C\n    n = t // (WO * HO * C)\n",
         new="    c = (t // (WO * HO)) // N\n    n = (t // (WO * HO)) % N\n",
         tests=["tests/cudasim/test_trace_cuda.py"], env=SIM,
         what="the CUDA pooling kernels count the planes c-major (same results, other threads)"),
    # --- CPU kernels
    dict(name="conv-channel-tile-offset", path="numbacnn/cpu/conv_tiles.py",
         old="start, n_pos = (n * O + g * Og + o) * positions + pos",
         new="start, n_pos = (n * O + g * Og) * positions + pos",
         tests=["tests/test_conv.py", "tests/test_kernels_conv.py"],
         what="conv forward tile kernel (16+ output channels) drops the channel-tile offset"),
    dict(name="conv-grad-weight-last-tap", path="numbacnn/cpu/conv_tiles.py",
         old="for k in range(k, K):", new="for k in range(k, K - 1):",
         tests=["tests/test_conv.py", "tests/test_kernels_conv.py"],
         what="conv grad_weight skips the last tap when the tap count is not a multiple of 4"),
    dict(name="pool-2x2-tie", path="numbacnn/cpu/pool.py",
         old="    if b > best:", new="    if b >= best:",
         tests=["tests/test_pool.py", "tests/test_kernels_pool.py"],
         what="2x2 max pool: a tie goes to the later element (PyTorch keeps the first)"),
    dict(name="max-pool-nan", path="numbacnn/cpu/pool.py", count=2,
         old="nans += v != v", new="nans += 0",
         tests=["tests/test_pool.py", "tests/test_kernels_pool.py"],
         what="general max pool: a NaN in the window no longer wins"),
    dict(name="relu-at-zero", path="numbacnn/cpu/functional.py",
         old="gxf[i] = gyf[i] if xf[i] > 0 else zero", new="gxf[i] = gyf[i] if xf[i] >= 0 else zero",
         tests=["tests/test_functional.py", "tests/test_kernels_functional.py"],
         what="relu backward passes the gradient at x == 0 (PyTorch gives 0)"),
    dict(name="cross-entropy-sum", path="numbacnn/cpu/fast_exp.py",
         old="    return total / N", new="    return total",
         tests=["tests/test_functional.py", "tests/test_kernels_functional.py"],
         what="cross-entropy (the fast forward) sums over the batch instead of taking the mean"),
    dict(name="cross-entropy-backward-sum", path="numbacnn/cpu/functional.py",
         old="gl[n, k] = grad * (p - (1.0 if k == target[n] else 0.0)) / N",
         new="gl[n, k] = grad * (p - (1.0 if k == target[n] else 0.0))",
         tests=["tests/test_functional.py", "tests/test_kernels_functional.py"],
         what="cross-entropy backward: the gradient of the sum, not of the mean"),
    # --- SGD
    dict(name="sgd-dampening-first-step", path="numbacnn/cpu/optim.py",
         old="            if first:\n                b = d\n", new="            if first:\n                b = keep * d\n",
         tests=["tests/test_optim.py"],
         what="SGD momentum: dampening applied on the first step (PyTorch copies the gradient)"),
    dict(name="sgd-nesterov-sign", path="numbacnn/cpu/optim.py",
         old="d = d + momentum * b if nesterov else b", new="d = d - momentum * b if nesterov else b",
         tests=["tests/test_optim.py"], what="Nesterov: the look-ahead term with the wrong sign"),
    dict(name="sgd-weight-decay-sign", path="numbacnn/cpu/optim.py",
         old="d = d + weight_decay * p.flat[i]", new="d = d - weight_decay * p.flat[i]",
         tests=["tests/test_optim.py"], what="weight decay pushes the weights away from 0"),
    # --- the tracer
    dict(name="tracer-value-after-early", path="numbacnn/trace/model.py",
         old=("        result = self._orig_step(*args, **kwargs)\n        for name, p in self._params:\n"
              '            rec[f"param/{name}/value_after"] = _to_host(p.data)\n'),
         new=('        for name, p in self._params:\n            rec[f"param/{name}/value_after"] = _to_host(p.data)\n'
              "        result = self._orig_step(*args, **kwargs)\n        for name, p in self._params:\n"),
         tests=["tests/test_trace_model.py"],
         what="the tracer records value_after before the optimizer's update"),
]
