"""The resolvelib provider: pip's ``PipProvider``, for one target.

:class:`Provider` feeds resolvelib, modelled on pip's ``PipProvider`` so that the
answers are pip's:

* candidates come from :func:`layerbuilder.select.candidates`, one per version,
  newest first, each version's best wheel for the target;
* ``name[extra]`` is its own node that depends on the exact base candidate, as
  in pip, so two extras of one project cannot pick two versions;
* preferences, the Requires-Python node and the narrowing of the selection to
  backtrack causes are pip's;
* markers are evaluated in ``target.marker_environment()`` plus ``extra``,
  never in the host's environment.

It reads the index through a :class:`~layerbuilder.resolver_fetch.Fetcher` and
looks ahead down the closure (:meth:`Provider.look_ahead`) so that documents and
metadata are ready when the resolver needs them.  ``Requires-Dist`` is only ever
read from the metadata of the very file that is pinned.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec.structs
import resolvelib
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from .errors import ProjectNotFound
from .models import DistFile, FileList, ProjectPage
from .requirements import RequirementLine
from .resolver_fetch import Fetcher, pinned_version
from .resolver_types import (
    PYTHON_IDENTIFIER,
    Base,
    Cand,
    Explicit,
    Extras,
    Metadata,
    Python,
    Req,
    RequiresPython,
    Spec,
    Unusable,
    parse_metadata,
)
from .select import (
    Candidate,
    Usable,
    candidates,
    newest_candidate,
    requires_python_version,
    usable_wheels,
)
from .targets import Target

__all__ = ["Provider"]


def _unread(page: ProjectPage) -> bool:
    """Whether *page* has versions whose files are not read yet."""
    return isinstance(page.files, FileList) and page.files.unread > 0


class Provider(resolvelib.AbstractProvider[Req, Cand, str]):
    def __init__(
        self,
        fetcher: Fetcher,
        target: Target,
        *,
        no_deps: bool,
        exclude: frozenset[str],
        exclude_newer: datetime | None,
        pre: bool,
        constraints: Mapping[str, Spec],
        user_requested: Mapping[str, int],
        on_guess: Callable[[DistFile], None] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self._target = target
        self._env = target.marker_environment()
        self.no_deps = no_deps
        self._exclude = exclude
        self.exclude_newer = exclude_newer
        self._pre = pre
        self._constraints = constraints
        self._user_requested = user_requested
        # the runtime's full version, as select checks file Requires-Python
        self.python = Python(requires_python_version(target))
        self._platforms = target.wheel_platforms
        self._usable_pages: dict[str, tuple[ProjectPage, list[Usable]]] = {}
        self._bases: dict[tuple[str, str], Base] = {}
        self._extras: dict[tuple[Base, frozenset[str]], Extras] = {}
        # parsed metadata by wheel URL, shared by the look-ahead and the resolver
        self._parsed: dict[str, Metadata] = {}
        self._ahead: set[tuple[str, str, frozenset[str]]] = set()
        self._ahead_lock = threading.Lock()
        # told (from a worker) of each wheel the look-ahead expects to be chosen
        self.on_guess = on_guess
        self._conflict_counts: defaultdict[str, int] = defaultdict(int)
        self._conflict_promoted: set[str] = set()
        self.not_found: dict[str, ProjectNotFound] = {}
        # identifier -> (parent, requirement) for every time it was asked for
        self.why: defaultdict[str, list[tuple[Cand | None, Req]]] = defaultdict(list)

    # -- selection -------------------------------------------------------------

    def _usable(self, page: ProjectPage) -> list[Usable]:
        """The wheels of *page* the target can take whatever the specifier (see
        :func:`usable_wheels`), worked out once per page rather than on each of
        the resolver's many questions about it.  The platform test reads the
        filename cheaply, so only wheels for the target's platforms are parsed."""
        usable = self._usable_pages.get(page.name)
        if usable is None or usable[0] is not page:
            wheels = msgspec.structs.replace(page, files=page.for_platforms(self._platforms))
            usable = (page, usable_wheels(wheels, self._target, self.exclude_newer))
            self._usable_pages[page.name] = usable
        return usable[1]

    def newest(self, page: ProjectPage, specifier: SpecifierSet) -> Candidate | None:
        """``select(page, specifier)[0]``: on a page with versions still unread,
        reading no more of them than that needs
        (:func:`~layerbuilder.select.newest_candidate`); else from the usable
        wheels worked out once per page."""
        if not _unread(page):
            found = self.select(page, specifier)
            return found[0] if found else None
        return newest_candidate(
            page,
            self._target,
            specifier,
            prereleases=True if self._pre else None,
            exclude_newer=self.exclude_newer,
        )

    def select(self, page: ProjectPage, specifier: SpecifierSet) -> list[Candidate]:
        return candidates(
            page,
            self._target,
            specifier,
            prereleases=True if self._pre else None,
            exclude_newer=self.exclude_newer,
            usable=self._usable(page),
        )

    def _base(self, c: Candidate) -> Base:
        key = (c.name, c.file.url)
        base = self._bases.get(key)
        if base is None:
            base = self._bases[key] = Base(c.name, c.version, c)
        return base

    def _with_extras(self, base: Base, extras: frozenset[str]) -> Extras:
        key = (base, extras)
        cand = self._extras.get(key)
        if cand is None:
            cand = self._extras[key] = Extras(base, extras)
        return cand

    # -- resolvelib's interface ------------------------------------------------

    def identify(self, requirement_or_candidate: Req | Cand) -> str:
        return requirement_or_candidate.identifier

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Cand],
        candidates: Mapping[str, Iterator[Cand]],
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
        resolutions: Mapping[str, Cand],
        candidates: Mapping[str, Iterator[Cand]],
        information: Mapping[str, Iterable[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[Any, ...]:
        # pip's order: conflict-promoted, direct, pinned, upper-bounded, the
        # user's own order, constrained at all, then the name.
        infos = list(information[identifier])
        direct = any(isinstance(i.requirement, Explicit) for i in infos)
        operators = [
            (s.operator, s.version)
            for i in infos
            if isinstance(i.requirement, Spec)
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
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Cand]],
    ) -> list[Cand] | Callable[[], Iterator[Cand]]:
        reqs = list(requirements[identifier])
        if identifier == PYTHON_IDENTIFIER:
            ok = all(self.is_satisfied_by(r, self.python) for r in reqs)
            return [self.python] if ok else []
        if any(isinstance(r, Unusable) for r in reqs):
            return []
        name, _, rest = identifier.partition("[")
        extras = frozenset(rest[:-1].split(",")) if rest else frozenset()
        incompatible = set(incompatibilities.get(identifier, ()))
        explicit = {r.candidate for r in reqs if isinstance(r, Explicit)}
        specs = [r for r in reqs if isinstance(r, Spec)]
        if extras:  # the base's requirements bind name[extras] too
            for r in requirements.get(name, ()):
                if isinstance(r, Explicit):
                    explicit.add(r.candidate)
                elif isinstance(r, Spec):
                    specs.append(r)
        constraint = self._constraints.get(name)
        if explicit:
            found = [self._with_extras(b, extras) if extras else b for b in explicit]
            return [
                c
                for c in found
                if (constraint is None or constraint.specifier.contains(c.version, True))
                and all(self.is_satisfied_by(r, c) for r in reqs)
                and c not in incompatible
            ]
        if not specs:
            return []

        def matches() -> Iterator[Cand]:
            # resolvelib calls this once per find_matches and keeps what it took:
            # the newest candidate comes without reading the whole page, the rest
            # only if the resolver looks past it (see _found)
            found = self._found(name, extras, specs, constraint)
            return (c for c in found if c not in incompatible)

        return matches

    def _found(
        self, name: str, extras: frozenset[str], specs: list[Spec], constraint: Spec | None
    ) -> Iterator[Cand]:
        specifier = SpecifierSet()
        hashes: frozenset[str] | None = None
        for r in [*specs, *([constraint] if constraint else [])]:
            specifier &= r.specifier
            if r.hashes:
                hashes = r.hashes if hashes is None else hashes & r.hashes
        pin = pinned_version(specifier)
        release = self.fetcher.release(name, pin) if pin is not None else None
        if release is not None and self.select(release, specifier):
            page = release  # holds every file the pin can match
        else:
            try:
                page = self.fetcher.page(name)
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
        if not found and not _unread(page):
            found = self.select(page, specifier)  # the whole list: as cheap as its first
        first = found[0] if found else self.newest(page, specifier)
        if first is None:
            return
        self.fetcher.prefetch_metadata(first)
        base = self._base(first)
        yield self._with_extras(base, extras) if extras else base
        # the rest of the list, in its order, only when the resolver asks for it
        for c in found or self.select(page, specifier):
            if c != first:
                base = self._base(c)
                yield self._with_extras(base, extras) if extras else base

    def is_satisfied_by(self, requirement: Req, candidate: Cand) -> bool:
        if isinstance(requirement, Explicit):
            base = candidate.base if isinstance(candidate, Extras) else candidate
            return base == requirement.candidate
        if isinstance(requirement, (Spec, RequiresPython)):
            return requirement.specifier.contains(candidate.version, prereleases=True)
        return False

    def get_dependencies(self, candidate: Cand) -> list[Req]:
        if isinstance(candidate, Python):
            return []
        if isinstance(candidate, Extras):
            deps: list[Req] = [Explicit(candidate.base)]
            if self.no_deps:
                return deps
            meta = self.metadata(candidate.base)
            deps += self._requirements(candidate.base, candidate.extras & meta.provides_extra)
        else:
            if self.no_deps:
                return []
            meta = self.metadata(candidate)
            if meta.problem is not None:
                return [Unusable(candidate, meta.problem)]
            deps = [RequiresPython(meta.requires_python)] if meta.requires_python else []
            deps += self._requirements(candidate, frozenset())
        for d in deps:
            self.why[d.identifier].append((candidate, d))
            if isinstance(d, Spec):  # usually already under way (see look_ahead)
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
        pin = pinned_version(specifier)
        if pin is not None:
            self.fetcher.prefetch_release(name, pin, then)
        else:
            self.fetcher.prefetch(name, then=then)

    def _ahead_page(
        self, specifier: SpecifierSet, extras: frozenset[str], page: ProjectPage
    ) -> None:
        pick = self.newest(page, specifier)
        if pick is not None:
            if self.on_guess is not None:
                self.on_guess(pick.file)
            self.fetcher.prefetch_metadata(
                pick, then=functools.partial(self._ahead_metadata, pick, extras)
            )

    def _ahead_metadata(self, pick: Candidate, extras: frozenset[str], data: bytes) -> None:
        if self.no_deps:
            return
        meta = self._metadata_of(pick, data)
        if meta.problem is not None:
            return
        # the dependencies get_dependencies will give, with and without the extras
        active = ("", *(extras & meta.provides_extra))
        for r in meta.requires_dist:
            if self.marker_ok(r.marker, active):
                for d in self.make(r):
                    self.look_ahead(d.name, d.specifier, d.extras)

    # -- metadata ----------------------------------------------------------------------

    def metadata(self, base: Base) -> Metadata:
        meta = self._parsed.get(base.selected.file.url)
        if meta is None:
            meta = self._metadata_of(base.selected, self.fetcher.metadata(base.selected))
        return meta

    def _metadata_of(self, cand: Candidate, data: bytes) -> Metadata:
        """*cand*'s parsed metadata, parsed once whichever thread asks first."""
        url = cand.file.url
        meta = self._parsed.get(url)
        if meta is None:
            parsed = parse_metadata(data, Base(cand.name, cand.version, cand))
            meta = self._parsed.setdefault(url, parsed)
        return meta

    def marker_ok(self, marker: Marker | None, extras: Iterable[str]) -> bool:
        if marker is None:
            return True
        return any(marker.evaluate({**self._env, "extra": e}) for e in (tuple(extras) or ("",)))

    def dependencies(self, base: Base, extras: frozenset[str]) -> list[Requirement]:
        """The Requires-Dist of *base* that apply on the target with *extras*."""
        meta = self.metadata(base)
        return [r for r in meta.requires_dist if self.marker_ok(r.marker, extras)]

    def _requirements(self, base: Base, extras: frozenset[str]) -> list[Req]:
        out: list[Req] = []
        for r in self.dependencies(base, extras):
            out += self.make(r)
        return out

    def make(self, r: Requirement, line: RequirementLine | None = None) -> list[Spec]:
        """pip's split: ``a[x]>=1`` becomes ``a>=1`` and ``a[x]>=1``."""
        name = canonicalize_name(r.name)
        if name in self._exclude:
            return []
        extras = frozenset(canonicalize_name(e) for e in r.extras)
        hashes = line.hashes if line is not None else frozenset()
        origin = line.origin if line is not None else None
        out: list[Spec] = []
        if extras and str(r.specifier):
            out.append(Spec(name, frozenset(), r.specifier, hashes, origin))
        out.append(Spec(name, extras, r.specifier, hashes, origin))
        return out
