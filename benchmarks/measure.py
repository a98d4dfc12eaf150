"""One measurement, in a fresh process: run a few commands in a row, time them, and read
the peak RSS of everything they started.

``python -m benchmarks.measure SPEC.json`` where the spec is
``{"steps": [{"name": str, "argv": [...], "cwd": str, "env": {...}, "log": path}]}``.
Prints one JSON object: per-step wall time, exit code and peak RSS (``wait4``'s rusage
of that step's process and the descendants it waited for), the total, and
``maxrss_kb`` = ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, the peak resident set of the
largest process among all of them.  Because this process is new for every measurement,
nothing from an earlier measurement leaks into these figures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

__all__ = ["measure"]


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    steps = []
    ok = True
    started = time.perf_counter()
    for step in spec["steps"]:
        with open(step["log"], "ab") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                step["argv"],
                cwd=step.get("cwd"),
                env=step.get("env"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = rc = os.waitstatus_to_exitcode(status)
        steps.append(
            {
                "name": step["name"],
                "wall": wall,
                "rc": rc,
                "maxrss_kb": usage.ru_maxrss,
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        )
        if rc != 0:
            ok = False
            break
    total = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "ok": ok,
        "wall": total,
        "steps": steps,
        "maxrss_kb": usage.ru_maxrss,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        result = measure(json.load(f))
    print(json.dumps(result))
