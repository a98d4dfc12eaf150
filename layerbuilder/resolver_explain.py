"""Why a resolution failed, said in terms of what the user asked for.

:func:`explain` turns resolvelib's ``ResolutionImpossible`` into the
:class:`~layerbuilder.errors.LayerBuilderError` that says it best: the runtime's
Python is too old or too new, a pinned file's metadata is unusable, nothing on
the index fits a requirement on the target, or requirements conflict; each with
the chain of requirements that led there (``you asked for a -> a 1.0 requires
b>=2``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import resolvelib
from packaging.requirements import Requirement

from .errors import (
    LayerBuilderError,
    NoCompatibleWheel,
    ProjectNotFound,
    ResolutionImpossible,
)
from .resolver_types import Cand, Req, RequiresPython, Spec, Unusable
from .targets import Target

if TYPE_CHECKING:
    from .resolver_provider import Provider

__all__ = ["explain"]


def _describe(req: Req) -> str:
    if isinstance(req, Spec):
        return f"{req.identifier}{req.specifier}"
    return str(req)


def _chain(provider: Provider, cand: Cand | None, seen: frozenset[str] = frozenset()) -> str:
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


def _cause_text(provider: Provider, req: Req, parent: Cand | None) -> str:
    if parent is None:
        if isinstance(req, Spec) and str(req.specifier):
            where = f" ({req.origin})" if req.origin else ""
            return f"you pinned {_describe(req)}{where}"
        return f"you asked for {_describe(req)}"
    head = _chain(provider, parent)
    text = f"{parent} requires {_describe(req)}"
    if head and not head.startswith(f"you asked for {parent.identifier}"):
        text += f" (via {head})"
    return text


def _no_match_error(
    provider: Provider, req: Spec, parent: Cand | None, target: Target, pre: bool
) -> LayerBuilderError | None:
    """The error for a requirement that no file of its project satisfies on
    the target, or None if it has candidates (a real conflict)."""
    from .select import choose

    path = _cause_text(provider, req, parent)
    if req.name in provider.not_found:
        return ProjectNotFound(f"{path}, but:\n{provider.not_found[req.name]}")
    try:
        page = provider.fetcher.full_page(req.name)
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
            exclude_newer=provider.exclude_newer,
        )
    except LayerBuilderError as exc:
        return type(exc)(f"{path}, and nothing on the index fits:\n{exc}")
    return NoCompatibleWheel(f"{path}, but no wheel of {req.name} fits {target}")


def explain(
    provider: Provider, exc: resolvelib.ResolutionImpossible[Any, Any], target: Target, pre: bool
) -> LayerBuilderError:
    causes = list(exc.causes)
    python = [c for c in causes if isinstance(c.requirement, RequiresPython)]
    python = [c for c in python if not c.requirement.specifier.contains(provider.python.version)]
    if python:
        lines = [f"{c.parent} requires Python{c.requirement.specifier}" for c in python]
        return NoCompatibleWheel(
            f"{target} runs Python {provider.python.version}, but "
            + "; ".join(f"{t} (via {_chain(provider, c.parent)})" for c, t in zip(python, lines))
        )
    for c in causes:
        if isinstance(c.requirement, Unusable):
            via = _chain(provider, c.requirement.candidate)
            return NoCompatibleWheel(f"{via}: {c.requirement}")
    # a requirement that nothing on the index satisfies for the target
    for c in causes:
        if isinstance(c.requirement, Spec):
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
