"""Resolve requirements to one consistent set of pinned wheels for a target.

resolvelib (pip's own backtracking engine) does the search; :class:`_Provider`
feeds it, modelled on pip's ``PipProvider`` so that the answers are pip's:

* candidates come from :func:`layerbuilder.select.candidates`, one per version,
  newest first, each version's best wheel for the target;
* ``name[extra]`` is its own node that depends on the exact base candidate, as
  in pip, so two extras of one project cannot pick two versions;
* preferences, the Requires-Python node and the narrowing of the selection to
  backtrack causes are pip's;
* markers are evaluated in ``target.marker_environment()`` plus ``extra``,
  never in the host's environment.

All I/O goes through an :class:`~layerbuilder.index.IndexClient`: project
documents and PEP 658 core metadata.  They are fetched in a bounded thread pool
as soon as a name is seen, so a closure of 30 packages does not cost 30 round
trips one after another.  ``Requires-Dist`` is only ever read from the metadata
of the very file that is pinned.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, Union

import resolvelib
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement as _PackagingInvalidRequirement
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import (
    IntegrityError,
    InvalidRequirement,
    LayerBuilderError,
    NoCompatibleWheel,
    ProjectNotFound,
    ResolutionImpossible,
)
from .models import DistFile, ProjectPage
from .plan import Plan, PlannedWheel
from .requirements import RequirementLine
from .targets import Target

if TYPE_CHECKING:
    from .index import IndexClient
    from .select import Candidate

__all__ = ["resolve"]

# pip's limit on resolution rounds before it gives up
MAX_ROUNDS = 200_000
PYTHON_IDENTIFIER = "<Python from Requires-Python>"

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# -- requirements and candidates as resolvelib sees them ---------------------------------


def _format_name(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass(frozen=True)
class _Base:
    """One version of a project, with the wheel chosen for the target."""

    name: str
    version: Version
    selected: Candidate

    @property
    def identifier(self) -> str:
        return self.name

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class _Extras:
    """``name[extras]`` at one version: depends on the exact base candidate."""

    base: _Base
    extras: frozenset[str]

    @property
    def identifier(self) -> str:
        return _format_name(self.base.name, self.extras)

    @property
    def version(self) -> Version:
        return self.base.version

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


@dataclass(frozen=True)
class _Python:
    version: Version

    @property
    def identifier(self) -> str:
        return PYTHON_IDENTIFIER

    def __str__(self) -> str:
        return f"Python {self.version}"


_Cand = Union[_Base, _Extras, _Python]


@dataclass(frozen=True)
class _Spec:
    """A named requirement with a version specifier (pip's SpecifierRequirement)."""

    name: str
    extras: frozenset[str]
    specifier: SpecifierSet
    hashes: frozenset[str] = frozenset()
    origin: str | None = None  # "requirements.txt:3" for lines from files

    @property
    def identifier(self) -> str:
        return _format_name(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.identifier}{self.specifier}"


@dataclass(frozen=True)
class _Explicit:
    """Exactly this candidate (pip's ExplicitRequirement)."""

    candidate: _Base

    @property
    def identifier(self) -> str:
        return self.candidate.name

    def __str__(self) -> str:
        return f"{self.candidate.name}=={self.candidate.version}"


@dataclass(frozen=True)
class _RequiresPython:
    specifier: SpecifierSet

    @property
    def identifier(self) -> str:
        return PYTHON_IDENTIFIER

    def __str__(self) -> str:
        return f"Python{self.specifier}"


@dataclass(frozen=True)
class _Unusable:
    """A candidate whose metadata is unusable: a node nothing can satisfy."""

    candidate: _Base
    reason: str

    @property
    def identifier(self) -> str:
        return f"<unusable {self.candidate.name} {self.candidate.version}>"

    def __str__(self) -> str:
        return self.reason


_Req = Union[_Spec, _Explicit, _RequiresPython, _Unusable]

# -- core metadata -------------------------------------------------------------


@dataclass(frozen=True)
class _Metadata:
    requires_dist: tuple[Requirement, ...]
    requires_python: SpecifierSet | None
    provides_extra: frozenset[str]
    problem: str | None = None


def _parse_metadata(data: bytes, cand: _Base) -> _Metadata:
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
    filename = cand.selected.file.filename
    name = msg.get("Name")
    version = msg.get("Version")
    try:
        if name is None or canonicalize_name(str(name)) != cand.name:
            raise ValueError(f"its metadata names project {name!r}")
        if version is None or Version(str(version)) != cand.version:
            raise ValueError(f"its metadata has version {version!r}")
        reqs = tuple(Requirement(str(r).strip()) for r in msg.get_all("Requires-Dist") or ())
        rp = msg.get("Requires-Python")
        requires_python = SpecifierSet(str(rp).strip()) if rp and str(rp).strip() else None
    except (ValueError, InvalidVersion, InvalidSpecifier, _PackagingInvalidRequirement) as exc:
        return _Metadata((), None, frozenset(), f"{filename} has unusable metadata: {exc}")
    extras = frozenset(canonicalize_name(str(e)) for e in msg.get_all("Provides-Extra") or ())
    return _Metadata(reqs, requires_python, extras)


# -- fetching --------------------------------------------------------------------


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


def _pinned_version(specifier: SpecifierSet) -> str | None:
    """``X`` when *specifier* holds ``==X`` (no wildcard): then one release's
    document has every file it can match."""
    for spec in specifier:
        if spec.operator == "==" and not spec.version.endswith(".*"):
            return spec.version
    return None


class _Fetcher:
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


# -- the provider --------------------------------------------------------------------


class _Provider(resolvelib.AbstractProvider[_Req, _Cand, str]):
    def __init__(
        self,
        fetcher: _Fetcher,
        target: Target,
        *,
        no_deps: bool,
        exclude: frozenset[str],
        exclude_newer: datetime | None,
        pre: bool,
        constraints: Mapping[str, _Spec],
        user_requested: Mapping[str, int],
    ) -> None:
        self._fetch = fetcher
        self._target = target
        self._env = target.marker_environment()
        self._no_deps = no_deps
        self._exclude = exclude
        self._exclude_newer = exclude_newer
        self._pre = pre
        self._constraints = constraints
        self._user_requested = user_requested
        from .select import requires_python_version

        # the runtime's full version, as select checks file Requires-Python
        self._python = _Python(requires_python_version(target))
        self._tags = frozenset(target.tag_priority)
        self._platforms = frozenset(target.platforms) | {"any"}
        self._usable_pages: dict[str, tuple[ProjectPage, ProjectPage]] = {}
        self._bases: dict[tuple[str, str], _Base] = {}
        self._extras: dict[tuple[_Base, frozenset[str]], _Extras] = {}
        # parsed metadata by wheel URL, shared by the look-ahead and the resolver
        self._parsed: dict[str, _Metadata] = {}
        self._ahead: set[tuple[str, str, frozenset[str]]] = set()
        self._ahead_lock = threading.Lock()
        # told (from a worker) of each wheel the look-ahead expects to be chosen
        self.on_guess: Callable[[DistFile], None] | None = None
        self._conflict_counts: defaultdict[str, int] = defaultdict(int)
        self._conflict_promoted: set[str] = set()
        self.not_found: dict[str, ProjectNotFound] = {}
        # identifier -> (parent, requirement) for every time it was asked for
        self.why: defaultdict[str, list[tuple[_Cand | None, _Req]]] = defaultdict(list)

    # -- selection -------------------------------------------------------------

    def _usable(self, page: ProjectPage) -> ProjectPage:
        """*page* without the files no choice for the target could ever take
        (sdists, wheels with no tag the target loads): select's answers are the
        same, and a project of thousands of files is scanned once, not per call."""
        usable = self._usable_pages.get(page.name)
        if usable is None or usable[0] is not page:
            # the platform test reads the filename cheaply; only survivors are parsed
            files = tuple(
                f for f in page.for_platforms(self._platforms) if not f.tags.isdisjoint(self._tags)
            )
            usable = self._usable_pages[page.name] = (page, replace(page, files=files))
        return usable[1]

    def select(self, page: ProjectPage, specifier: SpecifierSet) -> list[Candidate]:
        from .select import candidates

        return candidates(
            self._usable(page),
            self._target,
            specifier,
            prereleases=True if self._pre else None,
            exclude_newer=self._exclude_newer,
        )

    def _base(self, c: Candidate) -> _Base:
        key = (c.name, c.file.url)
        base = self._bases.get(key)
        if base is None:
            base = self._bases[key] = _Base(c.name, c.version, c)
        return base

    def _with_extras(self, base: _Base, extras: frozenset[str]) -> _Extras:
        key = (base, extras)
        cand = self._extras.get(key)
        if cand is None:
            cand = self._extras[key] = _Extras(base, extras)
        return cand

    # -- resolvelib's interface ------------------------------------------------

    def identify(self, requirement_or_candidate: _Req | _Cand) -> str:
        return requirement_or_candidate.identifier

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, _Cand],
        candidates: Mapping[str, Iterator[_Cand]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Iterable[str]:
        # pip's: Requires-Python alone first, then backtrack causes, then
        # names that keep turning up unpinned in conflicts.
        backtrack_identifiers: set[str] = set()
        for info in backtrack_causes:
            names = [info.requirement.identifier]
            if info.parent is not None:
                names.append(info.parent.identifier)
            for name in names:
                backtrack_identifiers.add(name)
                if name not in resolutions:
                    self._conflict_counts[name] += 1
                    if self._conflict_counts[name] >= 5:
                        self._conflict_promoted.add(name)
        current: list[str] = []
        promoted: list[str] = []
        for identifier in identifiers:
            if identifier == PYTHON_IDENTIFIER:
                return [identifier]
            if identifier in backtrack_identifiers:
                current.append(identifier)
            elif identifier in self._conflict_promoted:
                promoted.append(identifier)
        return current or promoted or identifiers

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, _Cand],
        candidates: Mapping[str, Iterator[_Cand]],
        information: Mapping[str, Iterable[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[Any, ...]:
        # pip's order: conflict-promoted, direct, pinned, upper-bounded, the
        # user's own order, constrained at all, then the name.
        infos = list(information[identifier])
        direct = any(isinstance(i.requirement, _Explicit) for i in infos)
        operators = [
            (s.operator, s.version)
            for i in infos
            if isinstance(i.requirement, _Spec)
            for s in i.requirement.specifier
        ]
        pinned = any(op[:2] == "==" and "*" not in ver for op, ver in operators)
        upper = any(op in ("<", "<=", "~=") or (op == "==" and "*" in ver) for op, ver in operators)
        return (
            identifier not in self._conflict_promoted,
            not direct,
            not pinned,
            not upper,
            self._user_requested.get(identifier, float("inf")),
            not operators,
            identifier,
        )

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[_Req]],
        incompatibilities: Mapping[str, Iterator[_Cand]],
    ) -> list[_Cand]:
        reqs = list(requirements[identifier])
        if identifier == PYTHON_IDENTIFIER:
            ok = all(self.is_satisfied_by(r, self._python) for r in reqs)
            return [self._python] if ok else []
        if any(isinstance(r, _Unusable) for r in reqs):
            return []
        name, _, rest = identifier.partition("[")
        extras = frozenset(rest[:-1].split(",")) if rest else frozenset()
        incompatible = set(incompatibilities.get(identifier, ()))
        explicit = {r.candidate for r in reqs if isinstance(r, _Explicit)}
        specs = [r for r in reqs if isinstance(r, _Spec)]
        if extras:  # the base's requirements bind name[extras] too
            for r in requirements.get(name, ()):
                if isinstance(r, _Explicit):
                    explicit.add(r.candidate)
                elif isinstance(r, _Spec):
                    specs.append(r)
        constraint = self._constraints.get(name)
        found: list[_Cand]
        if explicit:
            found = [self._with_extras(b, extras) if extras else b for b in explicit]
            found = [
                c
                for c in found
                if (constraint is None or constraint.specifier.contains(c.version, True))
                and all(self.is_satisfied_by(r, c) for r in reqs)
            ]
        elif not specs:
            return []
        else:
            found = list(self._found(name, extras, specs, constraint))
        return [c for c in found if c not in incompatible]

    def _found(
        self, name: str, extras: frozenset[str], specs: list[_Spec], constraint: _Spec | None
    ) -> Iterator[_Cand]:
        specifier = SpecifierSet()
        hashes: frozenset[str] | None = None
        for r in [*specs, *([constraint] if constraint else [])]:
            specifier &= r.specifier
            if r.hashes:
                hashes = r.hashes if hashes is None else hashes & r.hashes
        pin = _pinned_version(specifier)
        release = self._fetch.release(name, pin) if pin is not None else None
        if release is not None and self.select(release, specifier):
            page = release  # holds every file the pin can match
        else:
            try:
                page = self._fetch.page(name)
            except ProjectNotFound as exc:
                self.not_found[name] = exc
                return
        found: list[Candidate] = []
        if hashes is not None:
            # like pip: prefer files whose hash was given, if any file has one
            hashed = ProjectPage(
                page.name, tuple(f for f in page.files if f.sha256 in hashes), page.versions
            )
            found = self.select(hashed, specifier)
        if not found:
            found = self.select(page, specifier)
        if found:
            self._fetch.prefetch_metadata(found[0])
        for c in found:
            base = self._base(c)
            yield self._with_extras(base, extras) if extras else base

    def is_satisfied_by(self, requirement: _Req, candidate: _Cand) -> bool:
        if isinstance(requirement, _Explicit):
            base = candidate.base if isinstance(candidate, _Extras) else candidate
            return base == requirement.candidate
        if isinstance(requirement, (_Spec, _RequiresPython)):
            return requirement.specifier.contains(candidate.version, prereleases=True)
        return False

    def get_dependencies(self, candidate: _Cand) -> list[_Req]:
        if isinstance(candidate, _Python):
            return []
        if isinstance(candidate, _Extras):
            deps: list[_Req] = [_Explicit(candidate.base)]
            if self._no_deps:
                return deps
            meta = self.metadata(candidate.base)
            deps += self._requirements(candidate.base, candidate.extras & meta.provides_extra)
        else:
            if self._no_deps:
                return []
            meta = self.metadata(candidate)
            if meta.problem is not None:
                return [_Unusable(candidate, meta.problem)]
            deps = [_RequiresPython(meta.requires_python)] if meta.requires_python else []
            deps += self._requirements(candidate, frozenset())
        for d in deps:
            self.why[d.identifier].append((candidate, d))
            if isinstance(d, _Spec):  # usually already under way (see look_ahead)
                self.look_ahead(d.name, d.specifier, d.extras)
        return deps

    # -- looking ahead ---------------------------------------------------------------

    def look_ahead(self, name: str, specifier: SpecifierSet, extras: frozenset[str]) -> None:
        """Fetch ahead what resolving *name* will most likely need: its document,
        then the metadata of its likely pick, then, from that metadata, the same for
        each of its dependencies on the target, and so on down the closure.

        The resolver works one project at a time; without this it would wait for
        one round trip per level of the dependency tree.  With it, the whole
        closure is fetched concurrently from the first answer on, and the resolver
        finds its documents and metadata ready (or in flight).  It only ever
        fetches: the resolver still decides, and a guess that backtracking
        overturns costs a fetch and nothing else.
        """
        key = (name, str(specifier), extras)
        with self._ahead_lock:
            if key in self._ahead:
                return
            self._ahead.add(key)
        then = functools.partial(self._ahead_page, specifier, extras)
        pin = _pinned_version(specifier)
        if pin is not None:
            self._fetch.prefetch_release(name, pin, then)
        else:
            self._fetch.prefetch([name], then=then)

    def _ahead_page(
        self, specifier: SpecifierSet, extras: frozenset[str], page: ProjectPage
    ) -> None:
        found = self.select(page, specifier)
        if found:
            pick = found[0]
            if self.on_guess is not None:
                self.on_guess(pick.file)
            self._fetch.prefetch_metadata(
                pick, then=functools.partial(self._ahead_metadata, pick, extras)
            )

    def _ahead_metadata(self, pick: Candidate, extras: frozenset[str], data: bytes) -> None:
        if self._no_deps:
            return
        meta = self._metadata_of(pick, data)
        if meta.problem is not None:
            return
        active = extras & meta.provides_extra
        for r in meta.requires_dist:
            if self.marker_ok(r.marker, ()) or (active and self.marker_ok(r.marker, active)):
                name = canonicalize_name(r.name)
                if name not in self._exclude:
                    wanted = frozenset(canonicalize_name(e) for e in r.extras)
                    self.look_ahead(name, r.specifier, wanted)

    # -- metadata ----------------------------------------------------------------------

    def metadata(self, base: _Base) -> _Metadata:
        meta = self._parsed.get(base.selected.file.url)
        if meta is None:
            meta = self._metadata_of(base.selected, self._fetch.metadata(base.selected))
        return meta

    def _metadata_of(self, cand: Candidate, data: bytes) -> _Metadata:
        """*cand*'s parsed metadata, parsed once whichever thread asks first."""
        url = cand.file.url
        meta = self._parsed.get(url)
        if meta is None:
            parsed = _parse_metadata(data, _Base(cand.name, cand.version, cand))
            meta = self._parsed.setdefault(url, parsed)
        return meta

    def marker_ok(self, marker: Marker | None, extras: Iterable[str]) -> bool:
        if marker is None:
            return True
        return any(marker.evaluate({**self._env, "extra": e}) for e in (tuple(extras) or ("",)))

    def dependencies(self, base: _Base, extras: frozenset[str]) -> list[Requirement]:
        """The Requires-Dist of *base* that apply on the target with *extras*."""
        meta = self.metadata(base)
        return [r for r in meta.requires_dist if self.marker_ok(r.marker, extras)]

    def _requirements(self, base: _Base, extras: frozenset[str]) -> list[_Req]:
        out: list[_Req] = []
        for r in self.dependencies(base, extras):
            out += self.make(r)
        return out

    def make(self, r: Requirement, line: RequirementLine | None = None) -> list[_Req]:
        """pip's split: ``a[x]>=1`` becomes ``a>=1`` and ``a[x]>=1``."""
        name = canonicalize_name(r.name)
        if name in self._exclude:
            return []
        extras = frozenset(canonicalize_name(e) for e in r.extras)
        hashes = line.hashes if line is not None else frozenset()
        origin = line.origin if line is not None else None
        out: list[_Req] = []
        if extras and str(r.specifier):
            out.append(_Spec(name, frozenset(), r.specifier, hashes, origin))
        out.append(_Spec(name, extras, r.specifier, hashes, origin))
        return out


# -- explaining failures -----------------------------------------------------------


def _describe(req: _Req) -> str:
    if isinstance(req, _Spec):
        return f"{req.identifier}{req.specifier}"
    return str(req)


def _chain(provider: _Provider, cand: _Cand | None, seen: frozenset[str] = frozenset()) -> str:
    """How *cand* came in: ``you asked for a -> a 1.0 requires b>=2``."""
    if cand is None:
        return ""
    ident = cand.identifier
    whys = provider.why.get(ident) or []
    for parent, req in whys:
        if parent is None:
            return f"you asked for {_describe(req)}"
        if parent.identifier not in seen:
            head = _chain(provider, parent, seen | {ident})
            step = f"{parent} requires {_describe(req)}"
            return f"{head} -> {step}" if head else step
    return str(cand)


def _cause_text(provider: _Provider, req: _Req, parent: _Cand | None) -> str:
    if parent is None:
        if isinstance(req, _Spec) and str(req.specifier):
            where = f" ({req.origin})" if req.origin else ""
            return f"you pinned {_describe(req)}{where}"
        return f"you asked for {_describe(req)}"
    head = _chain(provider, parent)
    text = f"{parent} requires {_describe(req)}"
    if head and not head.startswith(f"you asked for {parent.identifier}"):
        text += f" (via {head})"
    return text


def _no_match_error(
    provider: _Provider, req: _Spec, parent: _Cand | None, target: Target, pre: bool
) -> LayerBuilderError | None:
    """The error for a requirement that no file of its project satisfies on
    the target, or None if it has candidates (a real conflict)."""
    from .select import choose

    path = _cause_text(provider, req, parent)
    if req.name in provider.not_found:
        return ProjectNotFound(f"{path}, but:\n{provider.not_found[req.name]}")
    try:
        page = provider._fetch.full_page(req.name)
    except LayerBuilderError as exc:
        return type(exc)(f"{path}, but:\n{exc}")
    if provider.select(page, req.specifier):
        return None
    try:
        choose(
            page,
            Requirement(f"{req.name}{req.specifier}"),
            target,
            pre=pre,
            exclude_newer=provider._exclude_newer,
        )
    except LayerBuilderError as exc:
        return type(exc)(f"{path}, and nothing on the index fits:\n{exc}")
    return NoCompatibleWheel(f"{path}, but no wheel of {req.name} fits {target}")


def _explain(
    provider: _Provider, exc: resolvelib.ResolutionImpossible[Any, Any], target: Target, pre: bool
) -> LayerBuilderError:
    causes = list(exc.causes)
    python = [c for c in causes if isinstance(c.requirement, _RequiresPython)]
    python = [c for c in python if not c.requirement.specifier.contains(provider._python.version)]
    if python:
        lines = [f"{c.parent} requires Python{c.requirement.specifier}" for c in python]
        return NoCompatibleWheel(
            f"{target} runs Python {provider._python.version}, but "
            + "; ".join(f"{t} (via {_chain(provider, c.parent)})" for c, t in zip(python, lines))
        )
    for c in causes:
        if isinstance(c.requirement, _Unusable):
            via = _chain(provider, c.requirement.candidate)
            return NoCompatibleWheel(f"{via}: {c.requirement}")
    # a requirement that nothing on the index satisfies for the target
    for c in causes:
        if isinstance(c.requirement, _Spec):
            err = _no_match_error(provider, c.requirement, c.parent, target, pre)
            if err is not None:
                return err
    seen: list[str] = []
    for c in causes:
        text = _cause_text(provider, c.requirement, c.parent)
        if text not in seen:
            seen.append(text)
    return ResolutionImpossible(
        f"cannot satisfy these requirements together for {target}: "
        + "; ".join(seen)
        + ". Loosen one of them, or pin a version of the package that brought it in."
    )


# -- the public function -------------------------------------------------------------


class _Reporter(resolvelib.BaseReporter):  # type: ignore[type-arg]
    def __init__(self, on_pin: Callable[[DistFile], None] | None) -> None:
        self._on_pin = on_pin

    def pinning(self, candidate: Any) -> None:
        if self._on_pin is not None and isinstance(candidate, _Base):
            self._on_pin(candidate.selected.file)


def _parse(req: str) -> tuple[Requirement, RequirementLine | None]:
    line = req if isinstance(req, RequirementLine) else None
    try:
        parsed = Requirement(str(req))
    except _PackagingInvalidRequirement as exc:
        where = f"{line.origin}: " if line is not None else ""
        raise InvalidRequirement(f"{where}{str(req)!r} is not a valid requirement: {exc}") from None
    if parsed.url:
        raise InvalidRequirement(
            f"{str(req)!r} is a direct URL reference; layerbuilder installs from the index "
            "only: name a version instead (e.g. name==1.2.3)"
        )
    return parsed, line


def resolve(
    requirements: Sequence[str],
    target: Target,
    *,
    client: IndexClient | None = None,
    index_url: str | None = None,
    no_deps: bool = False,
    exclude: Sequence[str] = (),
    exclude_newer: datetime | None = None,
    pre: bool = False,
    on_pin: Callable[[DistFile], None] | None = None,
    on_guess: Callable[[DistFile], None] | None = None,
) -> Plan:
    """Resolve *requirements* to one consistent set of wheels for *target*.

    Items of *requirements* are PEP 508 strings, or the
    :class:`~layerbuilder.requirements.RequirementLine` values that
    :func:`~layerbuilder.requirements.parse_requirements_file` yields (which carry
    ``--hash`` values, constraints and the file:line they came from).

    ``no_deps`` takes the requirements alone; ``exclude`` names are never
    resolved (nor their dependencies, unless something kept needs them);
    ``exclude_newer`` ignores files uploaded at or after that instant;
    ``pre`` allows pre-releases.

    ``on_pin(file)`` is called, on this thread, with each wheel as the resolver pins
    its version, before the resolution is complete: :func:`~layerbuilder.build_layer`
    starts downloading there.  A pin that backtracking undoes is not taken back, so
    the plan, not the calls, says what was chosen.  ``on_guess(file)`` is called
    earlier still, from worker threads, with each wheel the look-ahead expects the
    resolver to choose: usually right, and wrong whenever a constraint from elsewhere
    in the graph decides otherwise.
    """
    excluded = frozenset(canonicalize_name(n) for n in exclude)
    env = target.marker_environment()
    roots: list[_Req] = []
    constraints: dict[str, _Spec] = {}
    user_requested: dict[str, int] = {}
    top: list[str] = []
    excluded_roots: list[str] = []
    lines: dict[str, list[RequirementLine]] = defaultdict(list)
    own_client = client is None
    if client is None:
        from .index import IndexClient

        client = IndexClient(index_url)
    workers = int(getattr(client, "max_workers", 8) or 8)
    fetcher = _Fetcher(client, workers, frozenset(target.platforms) | {"any"})
    provider: _Provider | None = None
    try:
        parsed = [_parse(r) for r in requirements]
        for r, line in parsed:
            if line is not None and line.constraint:
                if r.marker is not None and not r.marker.evaluate({**env, "extra": ""}):
                    continue
                name = canonicalize_name(r.name)
                old = constraints.get(name)
                spec = r.specifier & old.specifier if old else r.specifier
                hashes = line.hashes | (old.hashes if old else frozenset())
                constraints[name] = _Spec(name, frozenset(), spec, hashes, line.origin)
        provider = _Provider(
            fetcher,
            target,
            no_deps=no_deps,
            exclude=excluded,
            exclude_newer=exclude_newer,
            pre=pre,
            constraints=constraints,
            user_requested=user_requested,
        )
        provider.on_guess = on_guess
        for i, (r, line) in enumerate(parsed):
            if line is not None and line.constraint:
                continue
            top.append(str(r))
            if r.marker is not None and not r.marker.evaluate({**env, "extra": ""}):
                continue
            name = canonicalize_name(r.name)
            if name in excluded:
                excluded_roots.append(name)
                continue
            made = provider.make(r, line)
            user_requested.setdefault(made[0].identifier, i)
            roots += made
            if line is not None and line.hashes:
                lines[name].append(line)
        # pip puts requirements with extras last (stable), see its factory
        roots.sort(key=lambda q: isinstance(q, _Spec) and bool(q.extras))
        for q in roots:
            provider.why[q.identifier].append((None, q))
        wanted: dict[str, tuple[SpecifierSet, frozenset[str]]] = {}
        for q in roots:
            if isinstance(q, _Spec):
                spec, extras = wanted.get(q.name, (SpecifierSet(), frozenset()))
                wanted[q.name] = (spec & q.specifier, extras | q.extras)
        for project, (specifier, extras) in wanted.items():
            constraint = constraints.get(project)
            if constraint is not None:
                specifier &= constraint.specifier
            provider.look_ahead(project, specifier, extras)
        engine: Any = resolvelib.Resolver(provider, _Reporter(on_pin))
        try:
            result = engine.resolve(roots, max_rounds=MAX_ROUNDS)
        except resolvelib.ResolutionImpossible as exc:
            raise _explain(provider, exc, target, pre) from None
        except resolvelib.ResolutionTooDeep as exc:
            raise ResolutionImpossible(
                f"gave up after {exc.round_count} resolution rounds for {target}: the "
                "requirements leave too many combinations; pin some versions and try again"
            ) from None
        return _plan(
            provider,
            result.mapping,
            target,
            top,
            excluded,
            excluded_roots,
            lines,
            [q.name for q in roots if isinstance(q, _Spec)],
        )
    finally:
        fetcher.close()
        if own_client:
            client.close()


def _plan(
    provider: _Provider,
    mapping: Mapping[str, _Cand],
    target: Target,
    top: list[str],
    excluded: frozenset[str],
    excluded_roots: list[str],
    lines: Mapping[str, list[RequirementLine]],
    root_names: list[str],
) -> Plan:
    bases: dict[str, _Base] = {}
    extras: defaultdict[str, set[str]] = defaultdict(set)
    for cand in mapping.values():
        if isinstance(cand, _Base):
            bases[cand.name] = cand
        elif isinstance(cand, _Extras):
            extras[cand.base.name] |= cand.extras
    for name, hashed in lines.items():
        base = bases.get(name)
        if base is None:
            continue
        sha = base.selected.file.sha256
        for line in hashed:
            if sha not in line.hashes:
                raise IntegrityError(
                    f"{line.origin}: {base.selected.file.filename} (sha256 {sha}) matches none "
                    f"of the --hash values given for {str(line)!r}; update the hashes or the pin"
                )
    requires: dict[str, set[str]] = {n: set() for n in bases}
    needs_excluded: dict[str, set[str]] = {n: set() for n in excluded_roots}
    if not provider._no_deps:
        for name, base in bases.items():
            meta = provider.metadata(base)
            active = frozenset(extras[name]) & meta.provides_extra
            for r in provider.dependencies(base, active):
                dep = canonicalize_name(r.name)
                if dep in excluded:
                    needs_excluded.setdefault(dep, set()).add(name)
                elif dep in bases and dep != name:
                    requires[name].add(dep)
    required_by: dict[str, set[str]] = {n: set() for n in bases}
    for name, needed in requires.items():
        for other in needed:
            required_by[other].add(name)
    # the requested packages first, in the order given; then the rest by name
    asked = [n for n in dict.fromkeys(root_names) if n in bases]
    order = asked + sorted(n for n in bases if n not in asked)
    packages = tuple(
        PlannedWheel(
            name=name,
            version=str(bases[name].version),
            file=bases[name].selected.file,
            requires=tuple(sorted(requires[name])),
            required_by=tuple(sorted(required_by[name])),
        )
        for name in order
    )
    return Plan(
        target=target,
        packages=packages,
        requirements=tuple(top),
        excluded=tuple((n, tuple(sorted(by))) for n, by in sorted(needs_excluded.items())),
    )
