"""``python -m benchmarks profile <workload>``: where layerbuilder's time goes.

Runs ``layerbuilder build`` (or ``resolve``) for the workload against the local index,
in a new process with a cold HTTP cache (``--warm-cache``: warmed by an untimed run
first), under cProfile — the main thread and, merged, every worker thread (cProfile
sees only the thread it is enabled in, so each thread gets its own profiler) — and
prints the top functions.  The raw profiles are kept in ``benchmarks/.cache/profile/``
for ``python -m pstats`` or snakeviz.  ``--pyinstrument`` uses pyinstrument instead
(main thread, wall-clock sampling), installing it into the benchmark venv if needed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import CACHE, REPO
from .env import reference_env, tool_paths
from .localindex import running_index
from .workloads import Workload, select

__all__ = ["profile"]

PROFILES = CACHE / "profile"


def _argv(w: Workload, url: str, cache: Path, out: Path, resolve: bool) -> list[str]:
    target = ["--runtime", w.runtime, "--arch", w.arch, "--index-url", url + "/pypi"]
    target += ["--cache-dir", str(cache)]
    if resolve:
        return ["resolve", *w.requirements, *target, "--json"]
    return ["build", *w.requirements, *target, "-o", str(out)]


def profile(
    w: Workload,
    *,
    resolve: bool = False,
    warm: bool = False,
    top: int = 30,
    pyinstrument: bool = False,
) -> int:
    paths = tool_paths()
    if pyinstrument:
        subprocess.run(
            [str(paths["python"]), "-m", "pip", "install", "-q", "pyinstrument"],
            env=reference_env(),
            check=True,
        )
    PROFILES.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-", dir=CACHE))
    try:
        with running_index() as url:
            argv = _argv(w, url, work / "lb-cache", work / "layer.zip", resolve)
            if warm:
                subprocess.run(
                    [str(paths["layerbuilder"]), *argv],
                    env=reference_env(),
                    cwd=work,
                    capture_output=True,
                )
            child = [str(paths["python"]), "-m", "benchmarks.profiling", "--child"]
            child += ["--top", str(top), "--name", w.key + ("-resolve" if resolve else "")]
            child += ["--pyinstrument"] if pyinstrument else []
            env = reference_env(PYTHONPATH=str(REPO))
            return subprocess.run([*child, "--", *argv], env=env, cwd=work).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child(argv: list[str], top: int, name: str, use_pyinstrument: bool) -> int:
    if use_pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler()
        started = time.perf_counter()
        prof.start()
        from layerbuilder.cli import main

        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        prof.stop()
        wall = time.perf_counter() - started
        print(prof.output_text(unicode=True, color=False))
        print(f"layerbuilder {' '.join(argv[:1])}: exit {rc}, {wall:.3f} s wall")
        return 0
    import cProfile
    import pstats

    lock = threading.Lock()
    thread_profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        p = cProfile.Profile()
        with lock:
            thread_profiles.append(p)
        p.enable()
        try:
            original(self)
        finally:
            p.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    started = time.perf_counter()
    main_profile.enable()
    from layerbuilder.cli import main  # inside the profile: import time counts

    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    main_profile.disable()
    wall = time.perf_counter() - started

    def table(stats: pstats.Stats, title: str, sort: str, *restrict: Any) -> None:
        buf = io.StringIO()
        stats.stream = buf  # type: ignore[attr-defined]
        stats.sort_stats(sort).print_stats(*restrict, top)
        body = buf.getvalue()
        start = body.find("   ncalls")
        print(f"\n=== {title} ===")
        print(body[start:] if start >= 0 else body)

    main_profile.dump_stats(str(PROFILES / f"{name}-main.prof"))
    main_stats = pstats.Stats(main_profile).strip_dirs()
    table(main_stats, "main thread, by cumulative time", "cumulative")
    table(main_stats, "main thread, by own time", "tottime")
    if thread_profiles:
        merged = pstats.Stats(thread_profiles[0])
        for p in thread_profiles[1:]:
            merged.add(p)
        merged.dump_stats(str(PROFILES / f"{name}-threads.prof"))
        merged.strip_dirs()
        table(merged, f"{len(thread_profiles)} worker threads merged, by own time", "tottime")
        table(merged, "worker threads merged, by cumulative time", "cumulative")
    print(
        f"\nlayerbuilder {argv[0]}: exit {rc}, {wall:.3f} s wall in this process "
        f"(cProfile overhead included); profiles in {PROFILES}/{name}-*.prof"
    )
    return 0 if rc == 0 else 1


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--name", default="profile")
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("workload", nargs="?")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        argv = [a for a in args.argv if a != "--"]
        if args.workload and args.workload != "--":
            argv.insert(0, args.workload)
        return _child(argv, args.top, args.name, args.pyinstrument)
    return profile(select([args.workload])[0], top=args.top)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(_main())
