"""The profiled process of ``python -m benchmarks profile`` (run by path, so that it imports
the layerbuilder installed in the benchmark venv, not the work tree's).

    python benchmarks/profile_child.py [--top N] [--name NAME] [--out DIR]
        [--pyinstrument] -- <layerbuilder arguments>
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _profiled_main(
    argv: list[str], start: Callable[[], object], stop: Callable[[], object]
) -> tuple[int, float]:
    """layerbuilder's main(argv) between start() and stop() of a profiler, its output
    discarded: (exit code, wall seconds)."""
    started = time.perf_counter()
    start()
    from layerbuilder.cli import main  # inside the profile: import time counts

    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    stop()
    return rc, time.perf_counter() - started


def run(argv: list[str], top: int, name: str, out: Path, use_pyinstrument: bool) -> int:
    if use_pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler()
        rc, wall = _profiled_main(argv, prof.start, prof.stop)
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
    rc, wall = _profiled_main(argv, main_profile.enable, main_profile.disable)

    def table(stats: pstats.Stats, title: str, sort: str, *restrict: Any) -> None:
        buf = io.StringIO()
        stats.stream = buf  # type: ignore[attr-defined]
        stats.sort_stats(sort).print_stats(*restrict, top)
        body = buf.getvalue()
        start = body.find("   ncalls")
        print(f"\n=== {title} ===")
        print(body[start:] if start >= 0 else body)

    main_profile.dump_stats(str(out / f"{name}-main.prof"))
    main_stats = pstats.Stats(main_profile).strip_dirs()
    table(main_stats, "main thread, by cumulative time", "cumulative")
    table(main_stats, "main thread, by own time", "tottime")
    if thread_profiles:
        merged = pstats.Stats(thread_profiles[0])
        for p in thread_profiles[1:]:
            merged.add(p)
        merged.dump_stats(str(out / f"{name}-threads.prof"))
        merged.strip_dirs()
        table(merged, f"{len(thread_profiles)} worker threads merged, by own time", "tottime")
        table(merged, "worker threads merged, by cumulative time", "cumulative")
    print(
        f"\nlayerbuilder {argv[0]}: exit {rc}, {wall:.3f} s wall in this process "
        f"(cProfile overhead included); profiles in {out}/{name}-*.prof"
    )
    return 0 if rc == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="profile_child.py")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--name", default="profile")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    args.out.mkdir(parents=True, exist_ok=True)
    return run(argv, args.top, args.name, args.out, args.pyinstrument)


if __name__ == "__main__":
    sys.exit(main())
