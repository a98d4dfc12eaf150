"""Fill the cache, then measure every tool on every workload, alternating."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import CACHE, REPO
from .env import reference_env, source_label, tool_paths
from .localindex import running_index, stats
from .tools import BUILD_TOOLS, EXTRA_TOOLS, RESOLVE_TOOLS, Run, steps_for
from .workloads import HEADLINE, Workload

__all__ = ["RESULTS", "fill", "machine_info", "needs_fill", "run"]

RESULTS = CACHE / "results"
FILLED = CACHE / "filled.json"
WORK = CACHE / "work"


def _say(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


# -- fill --------------------------------------------------------------------------------


def _filled() -> dict[str, Any]:
    if FILLED.exists():
        result: dict[str, Any] = json.loads(FILLED.read_text())
        return result
    return {}


def _fill_key(w: Workload, tool: str) -> str:
    return f"{' '.join(w.requirements)}|{w.runtime}|{w.arch}|{tool}"


def needs_fill(workloads: Sequence[Workload], tools: Sequence[str]) -> list[tuple[Workload, str]]:
    """The (workload, tool) pairs never yet run through a recording index."""
    done = _filled()
    return [(w, t) for w in workloads for t in _fill_tools(tools) if not done.get(_fill_key(w, t))]


def _fill_tools(tools: Sequence[str]) -> list[str]:
    # resolve needs nothing build does not; build needs what resolve needs.
    out = [t for t in tools if t in BUILD_TOOLS or t in EXTRA_TOOLS]
    if any(t in RESOLVE_TOOLS for t in tools) and "layerbuilder" not in out:
        out.append("layerbuilder")
    return out


def fill(pairs: Sequence[tuple[Workload, str]]) -> list[tuple[Workload, str, str]]:
    """Run each (workload, tool) once through a recording index; return the failures."""
    failures = []
    done = _filled()
    with running_index(record=True) as url:
        for w, tool in pairs:
            _say(f"fill: {tool} {w.label}")
            work = Path(tempfile.mkdtemp(prefix="fill-", dir=_work_root()))
            try:
                r = Run(tool, w, url, work)
                steps, _ = steps_for(r)
                for step in steps:
                    if step["name"] == "zip":  # asks the index nothing
                        continue
                    proc = subprocess.run(
                        step["argv"],
                        cwd=step["cwd"],
                        env=step["env"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                    if proc.returncode != 0:
                        tail = "\n".join(proc.stdout.splitlines()[-15:])
                        failures.append((w, tool, tail))
                        _say(f"fill: {tool} failed on {w.label}:\n{tail}")
                        break
                else:
                    done[_fill_key(w, tool)] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    FILLED.write_text(json.dumps(done, indent=1, sort_keys=True))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return failures


# -- machine -----------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, env=reference_env(), timeout=60
        )
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info() -> dict[str, Any]:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    paths = tool_paths()
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "pip": _version([str(paths["python"]), "-m", "pip", "--version"]).split(" from ")[0],
        "uv": _version([str(paths["uv"]), "--version"]),
        "layerbuilder": _version([str(paths["layerbuilder"]), "--version"]),
        "commit": source_label(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _os_name() -> str:
    found = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    return found.group(1) if found else platform.system()


# -- run ---------------------------------------------------------------------------------


def _work_root() -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return WORK


_DIST_INFO = re.compile(r"(?:^|/)([^/]+)-([^/-]+)\.dist-info/(?:METADATA)$")


def inspect_layer(path: Path) -> dict[str, Any]:
    """Sizes and the distributions (name==version) inside a layer zip."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        dists = sorted(
            {
                f"{re.sub(r'[-_.]+', '-', m.group(1)).lower()}=={m.group(2)}"
                for m in (_DIST_INFO.search(i.filename) for i in infos)
                if m
            }
        )
        return {
            "zip_size": path.stat().st_size,
            "unzipped_size": sum(i.file_size for i in infos),
            "entries": sum(1 for i in infos if not i.is_dir()),
            "pyc_size": sum(i.file_size for i in infos if i.filename.endswith(".pyc")),
            "dists": dists,
        }


_PHASE = re.compile(r"\b([a-z][a-z ]*?) took ([0-9.]+) ?s\b")


def _phases(log: Path) -> dict[str, float]:
    """layerbuilder -v's "<phase> took <seconds> s" lines."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    return {m.group(1).strip(): float(m.group(2)) for m in _PHASE.finditer(text)}


def _measure(r: Run) -> dict[str, Any]:
    steps, prep = steps_for(r)
    for step in prep:
        subprocess.run(step["argv"], cwd=step["cwd"], env=step["env"], capture_output=True)
    spec = r.work / "spec.json"
    spec.write_text(json.dumps({"steps": steps}))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.measure", str(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(r.work),
    )
    if out.returncode != 0:
        return {"ok": False, "error": out.stderr[-2000:]}
    result: dict[str, Any] = json.loads(out.stdout)
    if not result["ok"]:
        log = (r.work / "log.txt").read_text(errors="replace").splitlines()
        result["error"] = "\n".join(log[-20:])
    return result


def run(
    workloads: Sequence[Workload],
    tools: Sequence[str],
    *,
    repeat: int = 5,
    warmup: int = 1,
    out: Path | None = None,
) -> Path:
    """Measure, alternating tools within each workload and workloads within each round;
    write (and keep rewriting, so that an interrupted run leaves its figures) the results
    to *out*.  Rounds before *warmup* are run and kept but marked as warm-up."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = out or RESULTS / time.strftime("%Y%m%dT%H%M%S.json", time.gmtime())
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "repeat": repeat,
        "warmup": warmup,
        "headline": HEADLINE,
        "workloads": [
            {
                "key": w.key,
                "requirements": list(w.requirements),
                "runtime": w.runtime,
                "arch": w.arch,
                "label": w.label,
            }
            for w in workloads
        ],
        "tools": list(tools),
        "runs": [],
    }
    plan = [
        (rnd, w, t)
        for rnd in range(warmup + repeat)
        for w in workloads
        for t in tools
        if t in BUILD_TOOLS or w.key == HEADLINE
    ]
    started = time.perf_counter()
    with running_index() as url:
        for i, (rnd, w, tool) in enumerate(plan, 1):
            work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=_work_root()))
            try:
                stats(url, reset=True)
                load = os.getloadavg()[0]
                result = _measure(Run(tool, w, url, work))
                result["load_before"] = load
                served = stats(url)
                result.update(
                    workload=w.key,
                    tool=tool,
                    round=rnd,
                    warmup=rnd < warmup,
                    requests=served["requests"] - 1,
                    bytes_served=served["bytes_sent"],
                    misses=served["misses"],
                )
                if served["misses"]:
                    result["ok"] = False
                    result.setdefault("error", f"index misses: {served['misses'][:5]}")
                if result["ok"] and (work / "layer.zip").exists():
                    result.update(inspect_layer(work / "layer.zip"))
                if result["ok"] and tool.startswith("layerbuilder"):
                    result["phases"] = _phases(work / "log.txt")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            doc["runs"].append(result)
            doc["elapsed"] = time.perf_counter() - started
            out.write_text(json.dumps(doc, indent=1))
            status = (
                f"{result.get('wall', 0):7.2f} s {result.get('maxrss_kb', 0) / 1024:6.0f} MB"
                if result["ok"]
                else "FAILED: " + str(result.get("error", ""))[-300:]
            )
            tag = "warm-up" if rnd < warmup else f"round {rnd - warmup + 1}"
            _say(f"[{i}/{len(plan)}] {tag} {w.key:10} {tool:13} {status}")
    if any(r.get("misses") for r in doc["runs"]):
        _say(
            "some runs asked the index for something not in the cache (see 'misses' in the "
            "results); refill with: python3 -m benchmarks fill --force -t <tool> -w <workload>"
        )
    latest = RESULTS / "latest.json"
    latest.unlink(missing_ok=True)
    latest.symlink_to(out.name)
    return out
