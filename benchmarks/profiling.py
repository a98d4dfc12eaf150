"""``python -m benchmarks profile <workload>``: where layerbuilder's time goes.

Runs ``layerbuilder build`` (or ``resolve``) for the workload against the local index,
in a new process with a cold HTTP cache (``--warm-cache``: warmed by an untimed run
first), under cProfile — the main thread and, merged, every worker thread (cProfile
sees only the thread it is enabled in, so each thread gets its own profiler) — and
prints the top functions.  The raw profiles are kept in ``benchmarks/.cache/profile/``
for ``python -m pstats`` or snakeviz.  ``--pyinstrument`` uses pyinstrument instead
(main thread, wall-clock sampling), installing it into the benchmark venv if needed.
``--rss`` runs it unprofiled and prints its ``-v`` log lines with the peak resident
set between each line and the one before: which phase holds the memory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import CACHE
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


def rss_timeline(argv: list[str], cwd: Path, interval: float = 0.005) -> int:
    """Run ``layerbuilder -v <argv>`` unprofiled, sampling its resident set every
    *interval* seconds; print each of its log lines with the time it came and the
    peak RSS since the line before (so the phase that peaks shows)."""
    paths = tool_paths()
    proc = subprocess.Popen(
        [str(paths["layerbuilder"]), "-v", *argv],
        cwd=cwd,
        env=reference_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.perf_counter()
    peak = [0]

    def sample() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    print(f"{'time s':>7} {'peak RSS MB':>12}  log line")
    for line in proc.stderr:
        now = time.perf_counter() - started
        print(f"{now:7.2f} {peak[0] / 1024:12.0f}  {line.rstrip()[:110]}")
        peak[0] = 0
    proc.wait()
    sampler.join()
    total = time.perf_counter() - started
    print(f"{total:7.2f} {peak[0] / 1024:12.0f}  (exit {proc.returncode})")
    return proc.returncode


def profile(
    w: Workload,
    *,
    resolve: bool = False,
    warm: bool = False,
    top: int = 30,
    pyinstrument: bool = False,
    rss: bool = False,
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
            if rss:
                return rss_timeline(argv, work)
            # Run by path, not with -m: the child must import the layerbuilder installed
            # in the venv (the snapshot), not the one in this work tree.
            child = [str(paths["python"]), str(Path(__file__).with_name("profile_child.py"))]
            child += ["--top", str(top), "--out", str(PROFILES)]
            child += ["--name", w.key + ("-resolve" if resolve else "")]
            child += ["--pyinstrument"] if pyinstrument else []
            env = reference_env()
            return subprocess.run([*child, "--", *argv], env=env, cwd=work).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(profile(select(sys.argv[1:2])[0]))
