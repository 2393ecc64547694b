"""Lazy package attributes (numbacnn._lazy): names that load their submodule on first use (PEP 562).

``numbacnn`` and ``numbacnn.trace`` use it so that importing them does not import Numba: the kernels load
when a name that needs them is first touched.
"""
from __future__ import annotations

import importlib


def lazy_attributes(package: str, namespace: dict, where: dict, submodules=()):
    """(__getattr__, __dir__) for ``package``: name -> its submodule in ``where``; ``submodules`` by name.

    A loaded name is stored in ``namespace`` (the package's globals), so it loads once.
    """
    def __getattr__(name):
        if name in where:
            value = getattr(importlib.import_module(f".{where[name]}", package), name)
        elif name in submodules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(where) | set(submodules))

    return __getattr__, __dir__
