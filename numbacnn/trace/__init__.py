"""Tracing: record what the kernels actually computed, stream it to disk, and load it back.

- Op level (``numbacnn.trace.ops``): ``trace_conv2d`` / ``trace_pool2d`` record every window of one call.
- Model level: ``Tracer`` records feature maps, gradients and optimizer steps of a training run;
  ``load(path)`` reads a model trace (``Trace``) or an op trace (``OpTrace``).
Files hold NumPy arrays and JSON only (no pickle); a bad file raises ``TraceError`` (a ValueError).
"""
from .format import VERSION, TraceError
from .ops import OpTrace, TraceVerificationError, trace_conv2d, trace_pool2d
from .model import DEFAULT_EVERY, DEFAULT_SAMPLES, Trace, Tracer
from .reader import load

__all__ = ["VERSION", "TraceError", "TraceVerificationError", "OpTrace", "trace_conv2d", "trace_pool2d", "load", "Tracer", "Trace", "DEFAULT_EVERY", "DEFAULT_SAMPLES"]
