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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from packaging.specifiers import SpecifierSet
from packaging.tags import Tag

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
        self, client: IndexClient, max_workers: int, tags: frozenset[Tag] | None = None
    ) -> None:
        self._client = client
        # pages are parsed for the wheels with these tags only (IndexClient.get_project)
        self._tags = tags
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="layerbuilder-resolve")
        self._lock = threading.Lock()
        self._pages: dict[str, Future[ProjectPage]] = {}
        self._releases: dict[str, Future[ProjectPage | None]] = {}
        self._metadata: dict[str, Future[bytes]] = {}

    def close(self) -> None:
        """Stop the pool and let go of what was fetched.  The futures hold their
        look-ahead callbacks, which hold the provider, which holds this fetcher: a
        cycle that kept every document and metadata file of a resolution alive until
        a full garbage collection (none comes in a build; in a warm Lambda, one comes
        whenever it comes).  2.4 MB of a 241 MB layer's build, traced."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._pages.clear()
            self._releases.clear()
            self._metadata.clear()

    def _future(
        self, table: dict[str, Future[_T]], key: str, fn: Callable[..., _T], *args: Any
    ) -> Future[_T]:
        """*table*'s future for *key*, submitting ``fn(*args)`` the first time."""
        with self._lock:
            fut = table.get(key)
            if fut is None:
                fut = table[key] = self._pool.submit(fn, *args)
            return fut

    def _page_future(self, name: str) -> Future[ProjectPage]:
        return self._future(self._pages, name, self._get_project, name)

    def _get_project(self, name: str) -> ProjectPage:
        return self._client.get_project(name, tags=self._tags)

    def prefetch(self, name: str, then: Callable[[ProjectPage], None] | None = None) -> None:
        """Start fetching *name*'s document; *then(page)* runs in the worker once it
        arrives (used to fetch likely metadata next)."""
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
        return self._future(self._releases, key, self._client.get_release, name, version)

    def prefetch_release(
        self, name: str, version: str, then: Callable[[ProjectPage], None] | None = None
    ) -> None:
        """Like :meth:`prefetch`, for one release's (much smaller) document;
        *then* runs only if the index has that document."""
        fut = self._release_future(name, version)
        if then is not None:

            def then_page(page: ProjectPage | None) -> None:
                if page is not None:
                    then(page)

            fut.add_done_callback(functools.partial(_after, then_page))

    def release(self, name: str, version: str) -> ProjectPage | None:
        """The files of one release, or ``None`` where the index cannot say."""
        return self._release_future(name, version).result()

    def _metadata_future(self, cand: Candidate) -> Future[bytes]:
        url = cand.file.url
        return self._future(self._metadata, url, self._client.get_metadata, cand.file)

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
