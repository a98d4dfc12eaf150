"""Resolve requirements to one consistent set of pinned wheels for a target.

resolvelib (pip's own backtracking engine) does the search; :func:`resolve`
drives it and turns its answer into a :class:`~layerbuilder.plan.Plan`.  The
parts live in their own modules:

* :mod:`layerbuilder.resolver_provider`: the provider, modelled on pip's
  ``PipProvider`` so that the answers are pip's, with its look-ahead;
* :mod:`layerbuilder.resolver_types`: the requirements and candidates resolvelib
  sees, and the core metadata they carry;
* :mod:`layerbuilder.resolver_fetch`: all I/O, through an
  :class:`~layerbuilder.index.IndexClient`, in a bounded thread pool as soon as a
  name is seen, so a closure of 30 packages does not cost 30 round trips one
  after another;
* :mod:`layerbuilder.resolver_explain`: what a failure is told as.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import resolvelib
from packaging.requirements import InvalidRequirement as _PackagingInvalidRequirement
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from .errors import IntegrityError, InvalidRequirement, ResolutionImpossible
from .models import DistFile
from .plan import Plan, PlannedWheel
from .requirements import RequirementLine
from .resolver_explain import explain
from .resolver_fetch import Fetcher
from .resolver_provider import Provider
from .resolver_types import Base, Cand, Extras, Req, Spec
from .targets import Target

if TYPE_CHECKING:
    from .index import IndexClient

__all__ = ["resolve"]

# pip's limit on resolution rounds before it gives up
MAX_ROUNDS = 200_000


class _Reporter(resolvelib.BaseReporter):  # type: ignore[type-arg]
    def __init__(self, on_pin: Callable[[DistFile], None] | None) -> None:
        self._on_pin = on_pin

    def pinning(self, candidate: Any) -> None:
        if self._on_pin is not None and isinstance(candidate, Base):
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
    roots: list[Req] = []
    constraints: dict[str, Spec] = {}
    user_requested: dict[str, int] = {}
    top: list[str] = []
    excluded_roots: list[str] = []
    lines: dict[str, list[RequirementLine]] = defaultdict(list)
    own_client = client is None
    if client is None:
        from .index import IndexClient

        client = IndexClient(index_url)
    workers = int(getattr(client, "max_workers", 8) or 8)
    fetcher = Fetcher(client, workers, frozenset(target.tag_priority))
    provider: Provider | None = None
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
                constraints[name] = Spec(name, frozenset(), spec, hashes, line.origin)
        provider = Provider(
            fetcher,
            target,
            no_deps=no_deps,
            exclude=excluded,
            exclude_newer=exclude_newer,
            pre=pre,
            constraints=constraints,
            user_requested=user_requested,
            on_guess=on_guess,
        )
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
        roots.sort(key=lambda q: isinstance(q, Spec) and bool(q.extras))
        for q in roots:
            provider.why[q.identifier].append((None, q))
        wanted: dict[str, tuple[SpecifierSet, frozenset[str]]] = {}
        for q in roots:
            if isinstance(q, Spec):
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
            raise explain(provider, exc, target, pre) from None
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
            [q.name for q in roots if isinstance(q, Spec)],
        )
    finally:
        fetcher.close()
        if own_client:
            client.close()


def _plan(
    provider: Provider,
    mapping: Mapping[str, Cand],
    target: Target,
    top: list[str],
    excluded: frozenset[str],
    excluded_roots: list[str],
    lines: Mapping[str, list[RequirementLine]],
    root_names: list[str],
) -> Plan:
    bases: dict[str, Base] = {}
    extras: defaultdict[str, set[str]] = defaultdict(set)
    for cand in mapping.values():
        if isinstance(cand, Base):
            bases[cand.name] = cand
        elif isinstance(cand, Extras):
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
    if not provider.no_deps:
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
