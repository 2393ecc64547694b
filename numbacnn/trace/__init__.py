"""Tracing (numbacnn.trace): record what the kernels actually computed, stream it to disk, and load it back.

Op level (``numbacnn.trace.ops``; every field is listed in that module's docstring)::

    t = trace_conv2d(x, w, padding=1)            # the real kernel runs; every window is gathered and checked
    t.window, t.pad, t.products, t.result         # (M, Cg, KH, KW) ... (M,), in visit order t.pos
    trace_pool2d(x, "max", 2).chosen_hw           # the element each max window picked (from return_indices)
    trace_conv2d(x, w, device="cudasim").thread   # which CUDA block / thread computed each output
    t.save("conv.npz"); load("conv.npz")

Model level (``numbacnn.trace.model`` records, ``writer`` writes, ``reader`` reads back)::

    with Tracer(model, optimizer, "run.nctrace", every=50, samples=4) as tracer:
        for x, y in batches:
            train_batch(model, optimizer, x, y)  # hands loss and accuracy to the tracer (tracer.log: own loops)
    t = load("run.nctrace")
    t.feature_map("0", step=50), t.grad("0.weight"), t.momentum("0.weight"), t.scalars()["loss"]

Files hold NumPy arrays and JSON only (no pickle); a bad file raises ``TraceError`` (a ValueError).
"""
from .._lazy import lazy_attributes

# names load from their submodule on first use: reading and drawing an op trace (record, reader) needs no Numba
_WHERE = {"VERSION": "format", "TraceError": "format", "OpTrace": "record", "TraceVerificationError": "ops",
          "trace_conv2d": "ops", "trace_pool2d": "ops", "load": "reader", "Tracer": "model", "Trace": "reader",
          "DEFAULT_EVERY": "model", "DEFAULT_SAMPLES": "model"}


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _WHERE)

__all__ = ["VERSION", "TraceError", "TraceVerificationError", "OpTrace", "trace_conv2d", "trace_pool2d", "load",
           "Tracer", "Trace", "DEFAULT_EVERY", "DEFAULT_SAMPLES"]
