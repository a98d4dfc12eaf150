"""Benchmarks: layerbuilder against pip+zip and uv+zip on a local index on loopback.

Run everything (fill the cache if needed, measure, write ``docs/benchmarks.md`` and
``docs/benchmarks.png``) with::

    python3 -m benchmarks

See ``python3 -m benchmarks --help`` and ``docs/benchmarks.md``.  Nothing here is part
of the layerbuilder package; the tests of the main suite do not import it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CACHE", "REPO", "ROOT"]

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
CACHE = ROOT / ".cache"
