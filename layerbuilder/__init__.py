"""layerbuilder: build AWS Lambda layers for Python straight from the index,
without pip and without Docker.

The public API is imported lazily, so ``import layerbuilder`` stays cheap and
boto3 is only imported when something is published.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Target": "targets",
    "get_target": "targets",
    "RUNTIMES": "targets",
    "LayerBuilderError": "errors",
    "build_layer": "build",
    "BuildResult": "build",
    "resolve": "resolver",
    "Plan": "plan",
    "publish_layer": "publish",
    "verify_layer": "verify",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'layerbuilder' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
