"""Project documents, release documents and core metadata, fetched ahead.

All of the resolver's I/O goes through an :class:`~layerbuilder.index.IndexClient`:
project documents and PEP 658 core metadata.  :class:`Fetcher` fetches them in a
bounded thread pool as soon as a name is seen, so a closure of 30 packages does
not cost 30 round trips one after another; each document or metadata file is
fetched once and shared by whoever asks for it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from packaging.specifiers import SpecifierSet

from .models import ProjectPage

if TYPE_CHECKING:
    from .index import IndexClient
    from .select import Candidate

__all__ = ["Fetcher", "pinned_version"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _after(then: Callable[[_T], None], fut: Future[_T]) -> None:
    """Run *then* on a look-ahead's result.  Looking ahead is only ever an
    optimisation: a failure here (a missing project, a pool already shut down) is
    left for the resolver to meet, and explain, on its own path."""
    if fut.cancelled() or fut.exception() is not None:
        return
    try:
        then(fut.result())
    except Exception as exc:
        log.debug("look-ahead stopped: %s: %s", type(exc).__name__, exc)


def pinned_version(specifier: SpecifierSet) -> str | None:
    """``X`` when *specifier* holds ``==X`` (no wildcard): then one release's
    document has every file it can match."""
    for spec in specifier:
        if spec.operator == "==" and not spec.version.endswith(".*"):
            return spec.version
    return None


class Fetcher:
    """Project documents and metadata, fetched ahead in a bounded thread pool."""

    def __init__(
        self, client: IndexClient, max_workers: int, platforms: frozenset[str] | None = None
    ) -> None:
        self._client = client
        # pages are parsed for these platforms only (see IndexClient.get_project)
        self._platforms = platforms
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="layerbuilder-resolve")
        self._lock = threading.Lock()
        self._pages: dict[str, Future[ProjectPage]] = {}
        self._releases: dict[str, Future[ProjectPage | None]] = {}
        self._metadata: dict[str, Future[bytes]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _page_future(self, name: str) -> Future[ProjectPage]:
        with self._lock:
            fut = self._pages.get(name)
            if fut is None:
                fut = self._pool.submit(self._client.get_project, name, platforms=self._platforms)
                self._pages[name] = fut
            return fut

    def prefetch(
        self, names: Iterable[str], then: Callable[[ProjectPage], None] | None = None
    ) -> None:
        """Start fetching the documents of *names*; *then(page)* runs in the
        worker once a document arrives (used to fetch likely metadata next)."""
        for name in names:
            fut = self._page_future(name)
            if then is not None:
                fut.add_done_callback(functools.partial(_after, then))

    def page(self, name: str) -> ProjectPage:
        """*name*'s page as the resolver needs it: the target's wheels only."""
        return self._page_future(name).result()

    def full_page(self, name: str) -> ProjectPage:
        """Every file of *name*, to explain what the index offers when nothing fits."""
        page = self.page(name)
        return page if page.complete else self._client.get_project(name)

    def _release_future(self, name: str, version: str) -> Future[ProjectPage | None]:
        key = f"{name}=={version}"
        with self._lock:
            fut = self._releases.get(key)
            if fut is None:
                fut = self._pool.submit(self._client.get_release, name, version)
                self._releases[key] = fut
            return fut

    def prefetch_release(
        self, name: str, version: str, then: Callable[[ProjectPage], None] | None = None
    ) -> None:
        """Like :meth:`prefetch`, for one release's (much smaller) document."""
        fut = self._release_future(name, version)
        if then is not None:

            def after(done: Future[ProjectPage | None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    page = done.result()
                    if page is not None:
                        then(page)

            fut.add_done_callback(after)

    def release(self, name: str, version: str) -> ProjectPage | None:
        """The files of one release, or ``None`` where the index cannot say."""
        return self._release_future(name, version).result()

    def _metadata_future(self, cand: Candidate) -> Future[bytes]:
        with self._lock:
            fut = self._metadata.get(cand.file.url)
            if fut is None:
                fut = self._pool.submit(self._client.get_metadata, cand.file)
                self._metadata[cand.file.url] = fut
            return fut

    def prefetch_metadata(
        self, cand: Candidate, then: Callable[[bytes], None] | None = None
    ) -> None:
        """Start fetching *cand*'s metadata; *then(data)* runs in the worker once it
        arrives (used to look ahead at its dependencies)."""
        fut = self._metadata_future(cand)
        if then is not None:
            fut.add_done_callback(functools.partial(_after, then))

    def metadata(self, cand: Candidate) -> bytes:
        return self._metadata_future(cand).result()
