"""Logging for the Lambda function: levels from the environment, stage timings.

On Lambda the runtime has already put a handler on the root logger that writes
``[LEVEL]\\t<time>\\t<request id>\\t<message>`` lines to CloudWatch; this module only
sets the level of layerbuilder's loggers.  Run elsewhere (``sam local``, a test),
it adds a plain ``[LEVEL] message`` handler if nobody configured logging.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, MutableMapping

__all__ = ["LOG_LEVEL_ENV", "configure_logging", "stage"]

#: Environment variable with the function's log level (the template's LogLevel).
LOG_LEVEL_ENV = "LAYERBUILDER_LOG_LEVEL"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = logging.getLogger("layerbuilder")


def configure_logging(level: str | None = None) -> int:
    """Set layerbuilder's log level from *level*, else ``$LAYERBUILDER_LOG_LEVEL``,
    else INFO; returns the numeric level."""
    name = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").strip().upper()
    bad = name not in _LEVELS
    numeric = logging.INFO if bad else int(getattr(logging, name))
    log.setLevel(numeric)
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
        log.addHandler(handler)
    if bad:
        log.warning("unknown log level %r in %s; using INFO", name, LOG_LEVEL_ENV)
    return numeric


@contextlib.contextmanager
def stage(name: str, timings: MutableMapping[str, float] | None = None) -> Iterator[None]:
    """Time the block and log ``<name> took <seconds> s`` at INFO (also on failure,
    as ``<name> failed after ...``)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        log.info("%s failed after %.3f s", name, time.perf_counter() - started)
        raise
    seconds = time.perf_counter() - started
    if timings is not None:
        timings[name] = seconds
    log.info("%s took %.3f s", name, seconds)
