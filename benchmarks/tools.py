"""The commands being compared, one list of steps per tool and workload.

* ``layerbuilder`` — ``layerbuilder build`` against the JSON API, with a new (cold)
  HTTP cache directory every time;
* ``pip`` — reference pip ``install --target`` for the target's platforms, then zip;
* ``uv`` — ``uv pip install --target --python-platform``, then zip;
* ``resolve`` / ``resolve-warm`` — ``layerbuilder resolve --json`` alone, with a cold
  HTTP cache and with one warmed by an untimed resolve just before.

Every pip and uv run is cold too (``--no-cache-dir`` / ``--no-cache``).  The zip step is
the same for pip and uv (:mod:`benchmarks.zipdir`) and lays the tree out as layerbuilder
does: ``python/lib/python3.X/site-packages/``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuilder.targets import get_target

from .env import reference_env, tool_paths
from .workloads import Workload

__all__ = [
    "ALL_TOOLS",
    "BUILD_TOOLS",
    "EXTRA_TOOLS",
    "RESOLVE_TOOLS",
    "TOOLS",
    "Run",
    "steps_for",
    "uv_platform",
]

BUILD_TOOLS = ("layerbuilder", "pip", "uv")
RESOLVE_TOOLS = ("resolve", "resolve-warm")
# Measured on the headline workload only.
EXTRA_TOOLS = ("layerbuilder-simple",)
TOOLS = BUILD_TOOLS + RESOLVE_TOOLS
ALL_TOOLS = TOOLS + EXTRA_TOOLS
LABELS = {
    "layerbuilder": "layerbuilder build",
    "pip": "pip install --target + zip",
    "uv": "uv pip install --target + zip",
    "resolve": "layerbuilder resolve (cold HTTP cache)",
    "resolve-warm": "layerbuilder resolve (warm HTTP cache)",
    "layerbuilder-simple": "layerbuilder build from the PEP 691 simple API",
}


@dataclass(frozen=True)
class Run:
    """Where one measurement works and what it runs."""

    tool: str
    workload: Workload
    index_url: str
    work: Path

    @property
    def output(self) -> Path:
        return self.work / "layer.zip"


def uv_platform(workload: Workload) -> str:
    target = get_target(workload.runtime, workload.arch)
    major, minor = target.glibc
    return f"{target.machine}-manylinux_{major}_{minor}"


def _step(name: str, argv: list[str], run: Run, **env: str) -> dict[str, Any]:
    return {
        "name": name,
        "argv": [str(a) for a in argv],
        "cwd": str(run.work),
        "env": reference_env(**env),
        "log": str(run.work / "log.txt"),
    }


def _zip_step(run: Run, tree: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.zipdir", str(tree), str(run.output)]
    step = _step("zip", argv, run)
    step["env"]["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return step


def steps_for(run: Run) -> tuple[list[dict[str, Any]], list[Any]]:
    """(measured steps, untimed preparation steps) of *run*."""
    w = run.workload
    target = get_target(w.runtime, w.arch)
    paths = tool_paths()
    reqs = list(w.requirements)
    tree = run.work / "layer"
    site = tree / target.site_packages
    lb_target = ["--runtime", w.runtime, "--arch", w.arch]
    cache = run.work / "lb-cache"
    if run.tool in ("layerbuilder", "layerbuilder-simple"):
        api = "/pypi" if run.tool == "layerbuilder" else "/simple"
        # -v only adds a few log lines (the phase timings the report breaks down)
        argv = [paths["layerbuilder"], "-v", "build", *reqs, *lb_target]
        argv += ["-o", run.output, "--index-url", run.index_url + api, "--cache-dir", cache]
        return [_step("build", argv, run)], []
    if run.tool in RESOLVE_TOOLS:
        argv = [paths["layerbuilder"], "resolve", *reqs, *lb_target, "--json"]
        argv += ["--index-url", run.index_url + "/pypi", "--cache-dir", cache]
        prep = [_step("warm", argv, run)] if run.tool == "resolve-warm" else []
        return [_step("resolve", argv, run)], prep
    if run.tool == "pip":
        argv = [paths["python"], "-m", "pip", "install", "--isolated"]
        argv += ["--disable-pip-version-check", "--no-cache-dir", "--target", site]
        argv += [*target.pip_args(), "--index-url", run.index_url + "/simple", *reqs]
        return [_step("install", argv, run), _zip_step(run, tree)], []
    if run.tool == "uv":
        argv = [paths["uv"], "pip", "install", "--target", site, "--python", paths["python"]]
        argv += ["--python-platform", uv_platform(w), "--python-version"]
        argv += [target.python_version_str, "--only-binary", ":all:"]
        argv += ["--index-url", run.index_url + "/simple", "--no-cache", *reqs]
        return [_step("install", argv, run), _zip_step(run, tree)], []
    raise ValueError(f"unknown tool {run.tool!r}")
