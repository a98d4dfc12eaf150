"""Layer names: the default one for a project, and the rule every name obeys.

The default follows the convention ``<project>_<version digits>_py<XY>[_arm64]``,
e.g. ``scikit-learn_0222post1_py38`` or ``numpy_1264_py312_arm64``.
"""

from __future__ import annotations

import hashlib
import re

from packaging.utils import canonicalize_name

from .errors import InvalidLayerName
from .targets import Target

__all__ = ["MAX_NAME", "default_layer_name", "layer_name", "validate_layer_name"]

#: Lambda's limit on a layer name (``LayerName`` as a plain name, not an ARN).
MAX_NAME = 140
_VALID = re.compile(r"[A-Za-z0-9_-]{1,140}")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_HASH_LEN = 8


def layer_name(project: str, version: str, python_version: tuple[int, int], arch: str) -> str:
    """The default layer name for *project* at *version*, from plain values.

    The project part is the PEP 503 normalised name (so ``Scikit_Learn`` gives
    ``scikit-learn``); the version keeps only ASCII letters and digits.  A name
    longer than 140 characters is cut short and given an 8-character hash of the
    full name, so distinct long names stay distinct and the result is stable.
    """
    project_part = _NOT_NAME.sub("-", canonicalize_name(project)).strip("-") or "layer"
    version_part = _NOT_ALNUM.sub("", version)
    head = f"{project_part}_{version_part}" if version_part else project_part
    tail = "_py{}{}".format(*python_version) + ("_arm64" if arch == "arm64" else "")
    name = head + tail
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LEN]
    room = MAX_NAME - len(tail) - _HASH_LEN - 1
    return f"{head[:room].rstrip('_-')}_{digest}{tail}"


def default_layer_name(project: str, version: str, target: Target) -> str:
    """The default layer name for *project* at *version* built for *target*."""
    return layer_name(project, version, target.python_version, target.arch)


def validate_layer_name(name: str) -> str:
    """Return *name* if Lambda accepts it as a layer name, else :class:`InvalidLayerName`."""
    if _VALID.fullmatch(name):
        return name
    if not name:
        why = "it is empty"
    elif len(name) > MAX_NAME:
        why = f"it is {len(name)} characters long"
    else:
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_-"))})
        why = "it contains " + ", ".join(repr(c) for c in bad)
    raise InvalidLayerName(
        f"invalid layer name {name!r}: {why}; a layer name must match "
        f"[A-Za-z0-9_-]{{1,{MAX_NAME}}} (ASCII letters, digits, '_' and '-', "
        f"1 to {MAX_NAME} characters). Choose another with --layer-name."
    )
