"""The entry points' malloc setting (layerbuilder.memory)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from layerbuilder.memory import (
    THRESHOLD,
    fix_malloc_thresholds,
    give_back_free_memory,
    limit_malloc_arenas,
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_arenas_are_limited_in_a_fresh_process_unless_the_user_chose() -> None:
    code = "from layerbuilder.memory import limit_malloc_arenas as f; print(f())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr
    env = {"MALLOC_ARENA_MAX": "4", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr


def test_elsewhere_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert limit_malloc_arenas() is False
    assert fix_malloc_thresholds() is False
    assert give_back_free_memory() is False


# Blocks of 64 KiB come from the heap; freed, they stay resident until trimmed.
_TRIM_PROBE = """
import sys
from layerbuilder.memory import give_back_free_memory
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
give_back_free_memory()
keep = [bytes(range(256)) * 256 for _ in range(800)]  # 50 MB in 64 KiB blocks
tail = bytes(100_000)  # a heap block above them: only trimming inside the heap gives back
del keep
before = rss()
print(give_back_free_memory(), before - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_heap_pages_are_given_back() -> None:
    done = subprocess.run([sys.executable, "-c", _TRIM_PROBE], capture_output=True, text=True)
    gave, kb = done.stdout.split()
    assert gave == "True", done.stderr
    assert int(kb) > 40_000  # of the 50 MB freed


# After a 4 MB block is freed, is a 1 MB block still given a map of its own (counted
# in mallinfo2's hblkhd), or has glibc moved its threshold up to 4 MB?
_THRESHOLD_PROBE = """
import ctypes, sys
from layerbuilder.memory import fix_malloc_thresholds
NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in NAMES.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
print(fix_malloc_thresholds() if sys.argv[1] == "fix" else None)
block = bytearray(4 << 20)
del block
before = libc.mallinfo2().hblkhd
block = bytearray(1 << 20)
print(libc.mallinfo2().hblkhd - before >= 1 << 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("fix", [True, False])
def test_thresholds_stay_put_once_fixed(fix: bool) -> None:
    assert THRESHOLD < 1 << 20
    argv = [sys.executable, "-c", _THRESHOLD_PROBE, "fix" if fix else "leave"]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.stdout.split() == (["True", "True"] if fix else ["None", "False"]), done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_thresholds_the_user_set_are_left_alone() -> None:
    code = "from layerbuilder.memory import fix_malloc_thresholds as f; print(f())"
    env = {"MALLOC_TRIM_THRESHOLD_": "131072", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr


def test_the_command_runs_without_the_cyclic_collector() -> None:
    code = (
        "import gc, layerbuilder.cli as cli\n"
        "cli.main = lambda: print('collector on' if gc.isenabled() else 'collector off') or 0\n"
        "cli.run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "collector off"), done.stderr


def test_a_build_leaves_almost_nothing_for_the_collector(fake_index: Any, tmp_path: Path) -> None:
    """What makes turning the collector off safe: a build's objects are freed by
    reference counting.  It leaves 5 objects in cycles; before resolve() let go of
    its look-ahead futures it left 1,126 (the whole resolution's pages)."""
    from fakeindex import INDEX_URL

    from layerbuilder.build import build_layer

    gc.collect()
    gc.disable()
    try:
        result = build_layer(["requests"], output=tmp_path / "l.zip", index_url=INDEX_URL)
        left = gc.collect()
    finally:
        gc.enable()
    assert [p.name for p in result.wheels][:1] == ["requests"]
    assert left < 100, f"{left} objects in reference cycles after a build"
