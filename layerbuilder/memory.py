"""Process-wide memory settings for the entry points (the CLI and the Lambda handler).

The cyclic garbage collector
----------------------------
A command's work makes next to no cyclic garbage: a whole build of a 241 MB layer
leaves 648 objects for the collector, and its peak RSS is no higher with the
collector off (50.6-51.9 MB against 51.6-53.3 MB, 3 runs each).  Yet the collector
passed over the live objects 102 times in a ``pandas requests pydantic`` build, for
28 ms, most of them while the modules loaded.  So the console script turns it off
for its one command (:func:`no_cyclic_gc`); the library and the Lambda handler,
which live on between calls, leave it as it is.  ``tests/test_memory.py`` checks that
a build still leaves almost nothing for it.

Malloc arenas
-------------
glibc gives each thread that allocates its own malloc arena and keeps freed memory in
each of them.  A build runs some twenty threads (the resolver's fetchers, downloads,
ELF readers, the zip and cache writers), and that fragmentation alone added about
8 MB to the peak resident set of a 250 MB layer's build (72 MB -> 64 MB with two
arenas).  With the thresholds below, one arena did better again: that build peaked
at 45.5 MB instead of 46.2-46.3 (10-12 runs each), at the same speed; the threads
allocate little from malloc, and mostly holding the GIL.  Lambda bills by memory, so
the entry points ask for one arena, as ``MALLOC_ARENA_MAX=1`` would.  The library
never changes this on its own.

Malloc thresholds
-----------------
glibc serves a request from 128 KiB up with a map of its own, returned to the system on
``free``; but each time such a block is freed it raises that threshold to the block's
size (and the one for giving back the top of a heap to twice that).  The first index
document freed (numpy's is 3.7 MB) so moved both to megabytes: every later document,
download buffer and inflate step came from the heaps, whose freed memory stayed
resident.  At the end of a 250 MB layer's build the thread arena held 4.6 MB of which
4.2 MB was free.  :func:`fix_malloc_thresholds` pins both at 512 KiB, above the
256 KiB blocks that downloads, zip copies and inflating use over and over, and below
the documents: the build's peak went from 49.9 to 47.4 MB (8 runs each), and the
``requests`` build's stayed at 38.6 MB.

Free heap pages
---------------
Unlike the settings above, :func:`give_back_free_memory` is not for the entry points
alone: a build calls it once the zip is written (see its docstring).  It only hands
free pages back to the system, so it is harmless wherever it runs.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

__all__ = [
    "ARENAS",
    "THRESHOLD",
    "fix_malloc_thresholds",
    "give_back_free_memory",
    "limit_malloc_arenas",
    "no_cyclic_gc",
]

#: malloc arenas asked for (glibc's default is eight per core)
ARENAS = 1
#: bytes from which glibc maps a block of its own, and keeps at most free at a heap's top
THRESHOLD = 512 * 1024
# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _libc(name: str) -> Any:
    """glibc's function *name*, or None (not Linux, or a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def give_back_free_memory() -> bool:
    """Hand the free pages of the malloc heap back to the system (glibc's
    ``malloc_trim(0)``, which also releases free pages in the middle of the heap);
    True if any were.  A no-op (False) where there is no ``malloc_trim``.

    A build calls it between writing the zip and verifying it: the zip writer's
    buffers and the reads of the wheels leave megabytes free in the heap, where
    Python's objects (which live in arenas of their own) cannot use them, and
    verify then needs room for the layer's members.  In single builds of a 241 MB
    layer that took verify's peak from about 43.6 to 42.3 MB, for 0.4 ms."""
    trim = _libc("malloc_trim")
    return bool(trim(0)) if trim is not None else False


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most *arenas* malloc arenas; True if it agreed.

    A no-op (False) off Linux, on a C library without ``mallopt`` (musl), and when
    the user set ``MALLOC_ARENA_MAX`` themselves.
    """
    mallopt = _libc("mallopt")
    if mallopt is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def fix_malloc_thresholds(threshold: int = THRESHOLD) -> bool:
    """Pin glibc's mmap and trim thresholds at *threshold* bytes (see the module's
    docstring); True if it agreed.

    A no-op (False) where :func:`limit_malloc_arenas` is one, and when the user set
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` themselves.
    """
    mallopt = _libc("mallopt")
    if mallopt is None or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) & bool(mallopt(_M_TRIM_THRESHOLD, threshold))


def no_cyclic_gc() -> None:
    """Turn the cyclic garbage collector off for the rest of the process (the console
    script's one command; see the module's docstring).  Reference counting still
    frees everything that is not in a cycle."""
    gc.disable()
