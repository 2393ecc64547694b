"""`explore RUN.nctrace` (numbacnn.explore.run_page): a training run recorded by numbacnn.trace.Tracer (any
model), read back with numbacnn.trace.load: the loss and accuracy of every logged step, and per recorded step
the probe's feature maps through every layer, the gradients flowing back (the batch's examples: the probe has no
backward pass), every parameter's value, gradient, momentum buffer and update, and the probe's predictions.

Maps and parameters are quantized to 8 bits per array (256 levels between the array's min and max; the page says
so) with the exact min, max and L2 norm beside them; with more than ``max_steps`` recorded steps, evenly spaced
ones are kept (the page says which).
"""
from __future__ import annotations

import base64

import numpy as np

from .page import Raw, build, f32, g6

MAX_STEPS = 60
D2L = [("6.6 LeNet", "chapter_convolutional-neural-networks/lenet.html"),
       ("12.6 Momentum", "chapter_optimization/momentum.html")]


def q8(a) -> dict:
    """An array quantized to bytes: {"lo", "hi" (exact float32 limits), "b" (base64 uint8, row-major)};
    value ≈ lo + b · (hi − lo) / 255. NaN (a step without a momentum buffer yet) -> {"none": True}."""
    a = np.asarray(a, np.float32)
    if a.size == 0 or not np.all(np.isfinite(a)):
        return {"none": True}
    lo, hi = float(a.min()), float(a.max())
    b = np.zeros(a.shape, np.uint8) if hi == lo else np.round((a - lo) / (hi - lo) * 255).astype(np.uint8)
    one = lambda v: Raw(f32([v])[1:-1])  # noqa: E731  (one exact float32 number)
    return {"lo": one(lo), "hi": one(hi), "n": one(np.sqrt(np.sum(a.astype(np.float64) ** 2))),
            "b": base64.b64encode(b.tobytes()).decode("ascii")}


def _kept_steps(steps, max_steps):
    if len(steps) <= max_steps:
        return list(steps)
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, max_steps)).astype(int))
    return [steps[i] for i in idx]


def _classes(k):
    from ..data import CLASSES

    return list(CLASSES) if k == len(CLASSES) else [f"class {c}" for c in range(k)]


def run_data(trace, max_steps=MAX_STEPS) -> dict:
    """Every array the run page shows, from a numbacnn.trace.Trace."""
    m = trace.manifest
    all_steps = [int(s) for s in trace.steps]
    steps = _kept_steps(all_steps, max_steps)
    sc = trace.scalars()
    layers = [{"index": e["index"], "name": e["name"], "type": e.get("type", "?")} for e in m["layers"]]
    params = [{"name": e["name"], "shape": e["shape"], "layer": e["name"].split(".")[0]} for e in m["params"]]
    data = {"model": m.get("model", ""), "hyper": m.get("hyperparameters", {}), "complete": trace.complete,
            "steps": steps, "all_steps": len(all_steps), "probe": trace.has_probe, "layers": layers,
            "params": params, "scalars": {"step": [int(s) for s in sc["step"]], "loss": g6(sc["loss"]),
                                          "acc": g6(sc["acc"])}, "at": []}
    last = layers[-1]["name"] if layers else None
    for s in steps:
        a = trace.step_arrays(s)
        rec = {"layers": {}, "params": {}}
        for e in layers:
            i = e["index"]
            entry = {}
            for key, name in ((f"probe/{i}/y", "y"), (f"layer/{i}/y", "by"), (f"layer/{i}/grad_y", "gy")):
                if key in a and not (name == "by" and trace.has_probe):  # the batch's maps only without a probe
                    entry[name] = q8(a[key])
                    entry[name + "_shape"] = list(a[key].shape)
            if i == 0:
                for key, name in (("probe/0/x", "x"),):
                    if key in a:
                        entry[name] = q8(a[key])
                        entry[name + "_shape"] = list(a[key].shape)
            rec["layers"][e["name"]] = entry
        for p in params:
            value = a.get(f"param/{p['name']}/value")
            after = a.get(f"param/{p['name']}/value_after")
            rec["params"][p["name"]] = {
                "value": q8(value) if value is not None else {"none": True},
                "grad": q8(a[f"param/{p['name']}/grad"]) if f"param/{p['name']}/grad" in a else {"none": True},
                "momentum": q8(a[f"param/{p['name']}/momentum_after"]) if f"param/{p['name']}/momentum_after" in a
                else {"none": True},
                "update": q8(after - value) if value is not None and after is not None else {"none": True}}
        if trace.has_probe and last is not None and f"probe/{layers[-1]['index']}/y" in a:
            logits = a[f"probe/{layers[-1]['index']}/y"].reshape(len(a[f"probe/{layers[-1]['index']}/y"]), -1)
            rec["pred"] = [int(v) for v in logits.argmax(axis=1)]
            rec["logits"] = f32(logits)
        data["at"].append(rec)
    if trace.has_probe and data["at"] and "pred" in data["at"][0]:
        k = len(data["at"][0]["logits"].split(",")) // len(data["at"][0]["pred"])
        data["classes"] = _classes(k)
        data["labels"] = data["hyper"].get("probe_labels")
    return data


def page(path, *, max_steps=MAX_STEPS):
    """The run explorer of the trace folder ``path`` (a numbacnn.explore.page.Page)."""
    from ..trace import Trace, load

    trace = load(path)
    if not isinstance(trace, Trace):
        raise ValueError(f"{str(path)!r} is an op trace ({trace.op}); explore reads model trace folders "
                         "(numbacnn train-lenet --trace run.nctrace, or numbacnn.trace.Tracer)")
    data = run_data(trace, max_steps)
    kept = "" if len(data["steps"]) == data["all_steps"] else (
        f" {len(data['steps'])} of the {data['all_steps']} recorded steps are on this page, evenly spaced.")
    links = " · ".join(f'<a href="https://d2l.ai/{u}">D2L {t}</a>' for t, u in D2L)
    intro = ("A training run as the tracer recorded it. Scrub the recorded steps: the loss and accuracy curves "
             "mark the step; pick a layer in the column to see its feature maps for the fixed probe examples (the "
             "same images at every step), the gradients arriving at its output (for the batch's examples: only "
             "they had a backward pass), and its parameters' value, gradient, momentum buffer and update. Maps are "
             "quantized to 8 bits per array (256 levels between its min and max, printed exactly beside it)."
             f"{kept} {links}")
    return build("run", f"numbacnn explore {trace.path}: a recorded training run", intro, data)
