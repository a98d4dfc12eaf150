"""``python -m benchmarks`` — see ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import REPO

_USAGE_EPILOG = """\
With no command: fill the cache if needed, run, and write docs/benchmarks.md and
docs/benchmarks.png (the same as `fill` + `run` + `report`).  The first call creates
benchmarks/.cache/venv (latest pip, uv, matplotlib; layerbuilder pip-installed from a
snapshot of the code) and fills the index cache from the live index; after that
everything runs on loopback.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="layerbuilder against pip+zip and uv+zip on a local index on loopback.",
        epilog=_USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-w",
            "--workload",
            dest="workloads",
            action="append",
            metavar="KEY",
            help="only this workload (repeatable): requests, prp, sklearn, prp-arm64, large",
        )
        p.add_argument(
            "-t",
            "--tool",
            dest="tools",
            action="append",
            metavar="TOOL",
            help="only this tool (repeatable): layerbuilder, pip, uv, resolve, resolve-warm "
            "(the default set), layerbuilder-simple (same build from /simple)",
        )

    def measuring(p: argparse.ArgumentParser) -> None:
        selection(p)
        p.add_argument("-n", "--repeat", type=int, default=5, help="timed rounds (default 5)")
        p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
        p.add_argument("-o", "--output", type=Path, help="results file (default .cache/results/)")
        p.add_argument(
            "--docs", type=Path, default=REPO / "docs", help="where the report goes (default docs/)"
        )

    def source(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument(
            "--source",
            default=default,
            metavar="REV",
            help="the layerbuilder to measure: a git revision, or 'worktree' for the files "
            f"as they are now, uncommitted edits included (default {default})",
        )

    measuring(parser)
    source(parser, "HEAD")
    p = sub.add_parser("all", help="fill if needed, run, report (the default)")
    measuring(p)
    source(p, "HEAD")
    p = sub.add_parser("fill", help="fill the index cache from the live index")
    selection(p)
    source(p, "HEAD")
    p.add_argument("--force", action="store_true", help="re-run the tools even if filled")
    p = sub.add_parser("run", help="measure (fills first if needed), then report")
    measuring(p)
    source(p, "HEAD")
    p = sub.add_parser("report", help="write docs/benchmarks.md and .png from results")
    p.add_argument("results", nargs="?", type=Path, help="results file (default: the latest)")
    p.add_argument("--docs", type=Path, default=REPO / "docs", help="where to write")
    p = sub.add_parser("serve", help="serve the cache on 127.0.0.1 until interrupted")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--record", action="store_true", help="fetch misses from the live index")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p = sub.add_parser("profile", help="profile `layerbuilder build` on the local index")
    p.add_argument("workload", help="workload key, e.g. prp")
    p.add_argument("--resolve", action="store_true", help="profile `resolve` instead of `build`")
    p.add_argument("--warm-cache", action="store_true", help="profile with a warm HTTP cache")
    p.add_argument("--top", type=int, default=30, help="rows per table (default 30)")
    p.add_argument(
        "--pyinstrument", action="store_true", help="use pyinstrument (installed if missing)"
    )
    p.add_argument(
        "--rss", action="store_true", help="no profiler: peak RSS between log lines instead"
    )
    source(p, "worktree")
    return parser


def _hold_lock() -> None:
    """One measuring command at a time: each replaces the snapshot of layerbuilder that
    the venv runs.  The lock lives as long as this process (inherited across exec)."""
    import fcntl

    from . import CACHE

    CACHE.mkdir(parents=True, exist_ok=True)
    fd = os.open(CACHE / "busy.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        raise SystemExit(
            f"benchmarks: another measuring command is running (pid {holder or '?'}); "
            "wait for it to finish"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    os.set_inheritable(fd, True)


def _reexec_in_venv(source: str | None) -> None:
    from .env import bench_python, ensure_venv, in_venv, snapshot

    if in_venv():
        return
    if source is not None:
        _hold_lock()
        label = snapshot(None if source == "worktree" else source)
        print(f"benchmarks: measuring layerbuilder at {label}", file=sys.stderr)
    ensure_venv()
    os.chdir(REPO)
    python = str(bench_python())
    os.execv(python, [python, "-m", "benchmarks", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "all"
    # serve and report measure nothing: they neither take the lock nor replace the
    # snapshot another command may be measuring
    measures = command in ("all", "run", "fill", "profile")
    _reexec_in_venv(getattr(args, "source", None) if measures else None)

    from . import runner, tools, workloads

    if command == "serve":
        from .localindex import main as serve

        extra = ["--record"] if args.record else []
        extra += ["--verbose"] if args.verbose else []
        return serve(["--port", str(args.port), *extra])
    if command == "report":
        from .report import write_report

        results = args.results or runner.RESULTS / "latest.json"
        write_report(results, args.docs)
        return 0
    if command == "profile":
        from .profiling import profile

        return profile(
            workloads.select([args.workload])[0],
            resolve=args.resolve,
            warm=args.warm_cache,
            top=args.top,
            pyinstrument=args.pyinstrument,
            rss=args.rss,
        )
    chosen = workloads.select(args.workloads)
    chosen_tools = tuple(args.tools or tools.TOOLS)
    unknown = [t for t in chosen_tools if t not in tools.ALL_TOOLS]
    if unknown:
        known = ", ".join(tools.ALL_TOOLS)
        raise SystemExit(f"unknown tool(s) {', '.join(unknown)}; known: {known}")
    if command == "fill":
        pairs = (
            [(w, t) for w in chosen for t in runner._fill_tools(chosen_tools)]
            if args.force
            else runner.needs_fill(chosen, chosen_tools)
        )
        failures = runner.fill(pairs)
        return 1 if failures else 0
    pairs = runner.needs_fill(chosen, chosen_tools)
    if pairs:
        runner.fill(pairs)
    out = runner.run(chosen, chosen_tools, repeat=args.repeat, warmup=args.warmup, out=args.output)
    print(f"benchmarks: results in {out}", file=sys.stderr)
    from .report import write_report

    write_report(out, args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
