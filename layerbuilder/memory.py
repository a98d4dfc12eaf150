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
arenas).  Lambda bills by memory, so the entry points ask for two arenas, as
``MALLOC_ARENA_MAX=2`` would.  The library never changes this on its own.
"""

from __future__ import annotations

import gc
import os
import sys

__all__ = ["ARENAS", "limit_malloc_arenas", "no_cyclic_gc"]

#: malloc arenas asked for (glibc's default is eight per core)
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most *arenas* malloc arenas; True if it agreed.

    A no-op (False) off Linux, on a C library without ``mallopt`` (musl), and when
    the user set ``MALLOC_ARENA_MAX`` themselves.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def no_cyclic_gc() -> None:
    """Turn the cyclic garbage collector off for the rest of the process (the console
    script's one command; see the module's docstring).  Reference counting still
    frees everything that is not in a cycle."""
    gc.disable()
