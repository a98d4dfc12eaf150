"""A one-line progress display for a terminal; silent anywhere else.

The line is redrawn in place with ``\\r`` at most every ``interval`` seconds, so
many small :meth:`Progress.advance` calls cost next to nothing.  It is
thread-safe: concurrent downloads share one line.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

_MB = 1024 * 1024


class Progress:
    """Progress towards *total_bytes*, drawn as ``label  12.3/45.6 MB  27%  8.1 MB/s``.

    *enabled* ``None`` (the default) means "only when *stream* is a TTY";
    *stream* ``None`` means ``sys.stderr`` at construction time.
    """

    def __init__(
        self,
        total_bytes: int,
        label: str,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        *,
        interval: float = 0.1,
    ) -> None:
        self.total = max(0, int(total_bytes))
        self.label = label
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.interval = interval
        self.done = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_draw = float("-inf")
        self._width = 0
        self._closed = False

    def advance(self, n: int) -> None:
        """Count *n* more bytes done; redraw if the last redraw is old enough."""
        with self._lock:
            self.done += n
            if not self.enabled or self._closed:
                return
            now = time.monotonic()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                self._draw(now)

    def retarget(self, total_bytes: int, label: str, enabled: bool | None = None) -> None:
        """Set the total and the label, keeping the bytes done so far, and from now on
        draw if *enabled* (``None``: when the stream is a TTY).  For work that starts
        before its total is known: downloads begun while resolving."""
        with self._lock:
            self.total = max(0, int(total_bytes))
            self.label = label
            self.enabled = _isatty(self.stream) if enabled is None else enabled

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.enabled:
                self._draw(time.monotonic())
                self._write("\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def render(self, now: float | None = None) -> str:
        """The text of the line as it would be drawn now (no ``\\r``, no padding)."""
        elapsed = (time.monotonic() if now is None else now) - self._start
        parts = [self.label]
        if self.total:
            parts.append(f"{self.done / _MB:.1f}/{self.total / _MB:.1f} MB")
            parts.append(f"{min(100, self.done * 100 // self.total):3d}%")
        else:
            parts.append(f"{self.done / _MB:.1f} MB")
        if elapsed > 0:
            parts.append(f"{self.done / _MB / elapsed:.1f} MB/s")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        line = self.render(now)
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self._write("\r" + line + " " * pad)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken terminal must not fail a build
            self.enabled = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
