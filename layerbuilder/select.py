"""Wheel choice: which file of a project the target gets, as pip would choose it.

Given a :class:`~layerbuilder.models.ProjectPage` and a :class:`~layerbuilder.targets.Target`,
:func:`candidates` lists one wheel per version (newest first) that pip would pick for::

    pip install --only-binary=:all: --python-version 3.X.Y --implementation cp \\
        --abi cp3X --platform <each of target.platforms> ...

that is, what pip would pick running on the Lambda runtime itself.  The rules,
taken from pip's ``LinkEvaluator``, ``CandidateEvaluator`` and the resolver's
``iter_index_candidate_infos``:

* a file is a candidate if it is a wheel whose filename parses, names this
  project, carries at least one tag the target loads, was uploaded strictly
  before ``exclude_newer`` (when given; files with no upload time are then
  left out) and whose ``Requires-Python`` admits the runtime's full Python
  version (``3.9.25``, not ``3.9.0`` as ``--python-version 3.9`` would give
  pip: ``cryptography`` excludes ``3.9.0`` and ``3.9.1``, which no Lambda runs);
  an invalid ``Requires-Python`` is ignored, as pip ignores it;
* the requirement's specifier filters candidates; pre-releases pass if asked
  for, if the specifier names one, or if no final release passes (PEP 440, as
  packaging >= 26 and pip >= 26 apply it);
* yanked files (PEP 592) are dropped unless the specifier pins a version with
  ``==``/``===`` and every remaining candidate is yanked;
* within a version the best wheel has the highest ``(-tag priority, build
  tag)``; on a tie the file listed last on the page wins.

Tag priority is :attr:`Target.tag_priority`: the order pip gets from packaging
on such a system.  (Given ``--platform manylinux2014_x86_64``, pip also moves
``manylinux2010``/``manylinux1`` up to that position; see docs/pip-agreement.md
for why that never changed a pick.)

All functions here are pure: no I/O.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence

import msgspec
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import NoCompatibleWheel, SdistOnly, VersionNotFound
from .models import DistFile, FileList, ProjectPage
from .targets import ARCHES, RUNTIMES, Target

__all__ = [
    "Candidate",
    "Usable",
    "candidates",
    "choose",
    "explain_no_match",
    "newest_candidate",
    "requires_python_version",
    "usable_wheels",
]

Usable = tuple[DistFile, Version, int]
"""A wheel a target can take, whatever is asked of its version: the file, its
version, and the rank of its best tag (lower is better)."""


class Candidate(msgspec.Struct, frozen=True):
    """The best wheel of one version of a project for a target."""

    name: NormalizedName
    version: Version
    file: DistFile

    @property
    def warning(self) -> str | None:
        """A line to show the user when the choice is a yanked file, else ``None``."""
        if not self.file.yanked:
            return None
        reason = (self.file.yanked_reason or "").strip()
        why = f" (reason given: {reason!r})" if reason else " (no reason given)"
        return (
            f"{self.name} {self.version} is yanked{why}; using {self.file.filename} "
            "because the requirement pins that version"
        )


# -- small pure helpers ---------------------------------------------------------------


def requires_python_version(target: Target) -> Version:
    """The version ``Requires-Python`` is checked against: the runtime's full
    version (``3.9.25``), as pip running on the runtime checks it.  The resolver
    should check metadata ``Requires-Python`` against the same value."""
    return Version(target.full_python_version)


@functools.lru_cache(maxsize=4096)
def _requires_python_spec(value: str) -> SpecifierSet | None:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        return None


def _python_ok(file: DistFile, python: Version) -> bool:
    if file.requires_python is None:
        return True
    spec = _requires_python_spec(file.requires_python)
    # pip logs and ignores a Requires-Python it cannot parse.
    return spec is None or spec.contains(python, prereleases=True)


def _priority(file: DistFile, priority: Mapping[Tag, int]) -> int | None:
    ranks = [priority[t] for t in file.tags if t in priority]
    return min(ranks) if ranks else None


def _wheel_project(file: DistFile) -> NormalizedName:
    return canonicalize_name(file.filename.split("-", 1)[0])


def _uploaded_before(file: DistFile, cutoff: _dt.datetime | None) -> bool:
    if cutoff is None:
        return True
    return file.upload_time is not None and file.upload_time < cutoff


def _aware(stamp: _dt.datetime | None) -> _dt.datetime | None:
    if stamp is not None and stamp.tzinfo is None:
        return stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp


def _is_pinned(specifier: SpecifierSet) -> bool:
    """pip's test: ``===`` anything, or ``==`` without a trailing ``.*``."""
    for spec in specifier:
        if spec.operator == "===":
            return True
        if spec.operator == "==" and not spec.version.endswith(".*"):
            return True
    return False


def _names_prerelease(specifier: SpecifierSet) -> bool:
    """Does the specifier itself name a pre-release (packaging >= 26 rules)?"""
    for spec in specifier:
        if spec.operator == "!=" or (spec.operator == "==" and spec.version.endswith(".*")):
            continue
        try:
            if Version(spec.version).is_prerelease:
                return True
        except InvalidVersion:
            continue
    return False


def _pre_policy(specifier: SpecifierSet, prereleases: bool | None) -> bool | None:
    if prereleases is None and _names_prerelease(specifier):
        return True
    return prereleases


def _apply_pre(versions: Sequence[Version], policy: bool | None) -> list[bool]:
    """Which of *versions* pass the pre-release rule (one flag per item)."""
    if policy is True:
        return [True] * len(versions)
    if policy is False or any(not v.is_prerelease for v in versions):
        return [not v.is_prerelease for v in versions]
    return [True] * len(versions)  # nothing final matched: PEP 440 lets pre-releases in


# -- choosing ------------------------------------------------------------------------


def usable_wheels(
    page: ProjectPage, target: Target, exclude_newer: _dt.datetime | None = None
) -> list[Usable]:
    """The wheels on *page* that *target* can take, in page order: named for the
    project, with a tag the target loads, a ``Requires-Python`` the runtime meets,
    and uploaded before *exclude_newer*.  None of this depends on a specifier, so
    a caller asking :func:`candidates` many times about one page can work this out
    once and pass it as *usable*."""
    priority = target.tag_priority
    python = requires_python_version(target)
    cutoff = _aware(exclude_newer)
    pool: list[Usable] = []
    for file in page.files:
        version = file.version
        if not file.is_wheel or version is None or _wheel_project(file) != page.name:
            continue
        rank = _priority(file, priority)
        if rank is None or not _uploaded_before(file, cutoff) or not _python_ok(file, python):
            continue
        pool.append((file, version, rank))
    return pool


def candidates(
    page: ProjectPage,
    target: Target,
    specifier: SpecifierSet = SpecifierSet(),  # noqa: B008 - immutable in practice
    *,
    prereleases: bool | None = None,
    exclude_newer: _dt.datetime | None = None,
    allow_yanked_pin: bool = True,
    usable: Sequence[Usable] | None = None,
) -> list[Candidate]:
    """One :class:`Candidate` per version that has a wheel for *target*, newest first.

    *prereleases*: ``True`` lets every pre-release in (pip's ``--pre``), ``False``
    none, ``None`` follows PEP 440 (only when the specifier names one or nothing
    final fits).  *allow_yanked_pin*: apply pip's rule that a yanked release may be
    used when the specifier pins it and nothing else is left.  *usable*: what
    :func:`usable_wheels` gives for the same page, target and *exclude_newer*.
    """
    if usable is None:
        usable = usable_wheels(page, target, exclude_newer)
    contains: dict[Version, bool] = {}  # a version's files share the answer
    pool: list[Usable] = []
    for item in usable:
        version = item[1]
        ok = contains.get(version)
        if ok is None:
            ok = contains[version] = specifier.contains(version, prereleases=True)
        if ok:
            pool.append(item)

    keep = _apply_pre([v for _, v, _ in pool], _pre_policy(specifier, prereleases))
    pool = [item for item, ok in zip(pool, keep) if ok]

    if not (allow_yanked_pin and _is_pinned(specifier) and all(f.yanked for f, _, _ in pool)):
        pool = [item for item in pool if not item[0].yanked]

    best: dict[Version, tuple[tuple[int, tuple[int, str] | tuple[()]], DistFile]] = {}
    for file, version, rank in pool:
        key = (-rank, file.build_tag)
        current = best.get(version)
        # ">=": pip sorts stably and walks the list backwards, so the last of equals wins
        if current is None or key >= current[0]:
            best[version] = (key, file)
    return [
        Candidate(page.name, version, best[version][1]) for version in sorted(best, reverse=True)
    ]


def newest_candidate(
    page: ProjectPage,
    target: Target,
    specifier: SpecifierSet = SpecifierSet(),  # noqa: B008 - immutable in practice
    *,
    prereleases: bool | None = None,
    exclude_newer: _dt.datetime | None = None,
) -> Candidate | None:
    """``candidates(...)[0]`` (None when there is none), reading as few of the
    page's versions as that needs.

    A page whose versions are still unread (:meth:`FileList.newest_first`) is
    read newest version first, and only until the candidates of the versions read
    so far settle the first: a final release (then no older version comes before
    it, and PEP 440 leaves pre-releases out), or any candidate when pre-releases
    are let in.  numpy's document lists 4,415 files over 154 versions; the first
    candidate is nearly always in the newest.  This takes the index at its word
    that each file is listed under its own version, as PyPI's JSON API lists them.
    """
    releases = None
    # (a pinned version goes to candidates(): pip's yanked rule looks at all its files)
    if isinstance(page.files, FileList) and not _is_pinned(specifier):
        releases = page.files.newest_first()
    if releases is not None:
        settled = _pre_policy(specifier, prereleases) is True
        seen: list[DistFile] = []
        for files in releases:
            if not files:
                continue
            seen.extend(files)
            part = ProjectPage(page.name, tuple(seen), page.versions, complete=False)
            found = candidates(
                part, target, specifier, prereleases=prereleases, exclude_newer=exclude_newer
            )
            if found and (settled or not found[0].version.is_prerelease):
                return found[0]
    found = candidates(
        page, target, specifier, prereleases=prereleases, exclude_newer=exclude_newer
    )
    return found[0] if found else None


def choose(
    page: ProjectPage,
    requirement: Requirement,
    target: Target,
    *,
    pre: bool = False,
    exclude_newer: _dt.datetime | None = None,
) -> Candidate:
    """The wheel pip would install for *requirement* on *target* (markers and
    extras are the caller's business).

    Raises :class:`VersionNotFound`, :class:`SdistOnly` or :class:`NoCompatibleWheel`
    with a message that says why and what to do instead.
    """
    found = candidates(
        page,
        target,
        requirement.specifier,
        prereleases=True if pre else None,
        exclude_newer=exclude_newer,
    )
    if found:
        return found[0]
    error, message = _diagnose(
        page, requirement, target, exclude_newer=exclude_newer, pre=pre, found=found
    )
    raise error(message)


def explain_no_match(
    page: ProjectPage,
    requirement: Requirement,
    target: Target,
    *,
    exclude_newer: _dt.datetime | None = None,
    pre: bool = False,
) -> str:
    """The text :func:`choose` would raise for *requirement* on *target*."""
    return _diagnose(page, requirement, target, exclude_newer=exclude_newer, pre=pre)[1]


# -- explaining ----------------------------------------------------------------------

_SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(.+)")
_LEGACY_TO_PEP600 = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_CPY = re.compile(r"cp3(\d+)")


def _file_version(file: DistFile, project: NormalizedName) -> Version | None:
    if file.is_wheel:
        return file.version if _wheel_project(file) == project else None
    for suffix in _SDIST_SUFFIXES:
        if file.filename.endswith(suffix):
            stem = file.filename[: -len(suffix)]
            name, sep, version = stem.rpartition("-")
            if not sep or canonicalize_name(name) != project:
                return None
            try:
                return Version(version)
            except InvalidVersion:
                return None
    return None


def _releases(page: ProjectPage) -> dict[Version, list[DistFile]]:
    out: dict[Version, list[DistFile]] = {}
    for file in page.files:
        version = _file_version(file, page.name)
        if version is not None:
            out.setdefault(version, []).append(file)
    return out


def _listed(versions: Iterable[Version]) -> str:
    return ", ".join(str(v) for v in versions)


def _describe_target(target: Target) -> str:
    return (
        f"{target} (CPython {target.python_version_str}, {target.os_name} with "
        f"glibc {target.glibc[0]}.{target.glibc[1]}, {target.machine})"
    )


def _platform_key(platform: str) -> tuple[int, str]:
    for rank, prefix in enumerate(("manylinux", "musllinux", "linux", "macosx", "win")):
        if platform.startswith(prefix):
            return rank, platform
    return 9, platform


def _summarise_tags(files: Iterable[DistFile]) -> str:
    """E.g. ``cp311-cp314 (with an en dash), cp39-abi3 on manylinux_2_28_x86_64, macosx``."""
    pythons: set[str] = set()
    platforms: set[str] = set()
    for file in files:
        for tag in file.tags:
            if tag.abi == "abi3":
                pythons.add(f"{tag.interpreter}-abi3")
            elif tag.abi == "none" or not tag.abi.startswith("cp"):
                pythons.add(tag.interpreter)
            else:
                pythons.add(tag.abi)
            platforms.add(tag.platform)
    for legacy, (major, minor) in _LEGACY_TO_PEP600.items():
        for platform in list(platforms):
            if platform.startswith(legacy + "_"):
                machine = platform[len(legacy) + 1 :]
                if f"manylinux_{major}_{minor}_{machine}" in platforms:
                    platforms.discard(platform)
    shown: set[str] = set()
    for platform in platforms:
        for prefix in ("macosx", "ios", "android"):
            if platform.startswith(prefix + "_"):
                platform = prefix
        shown.add(platform)
    return f"{_compress_pythons(pythons)} on {', '.join(sorted(shown, key=_platform_key))}"


def _compress_pythons(labels: set[str]) -> str:
    minors = sorted(int(m.group(1)) for m in map(_CPY.fullmatch, labels) if m)
    runs: list[str] = []
    start = prev = None
    for minor in [*minors, None]:
        if minor is not None and prev is not None and minor == prev + 1:
            prev = minor
            continue
        if start is not None and prev is not None:
            runs.append(f"cp3{start}" if start == prev else f"cp3{start}\u2013cp3{prev}")
        start = prev = minor
    others = sorted(label for label in labels if not _CPY.fullmatch(label))
    return ", ".join(runs + others)


def _fits_elsewhere(
    page: ProjectPage,
    requirement: Requirement,
    target: Target,
    exclude_newer: _dt.datetime | None,
    pre: bool,
) -> list[str]:
    """``python3.12 on x86_64 and arm64 (2.3.1)``, one item per other runtime that fits."""
    out = []
    for runtime in RUNTIMES:
        fits: list[tuple[str, Version]] = []
        for arch in ARCHES:
            other = Target(runtime, arch)
            if other == target:
                continue
            found = candidates(
                page,
                other,
                requirement.specifier,
                prereleases=True if pre else None,
                exclude_newer=exclude_newer,
            )
            if found:
                fits.append((arch, found[0].version))
        if len(fits) > 1 and len({v for _, v in fits}) == 1:
            out.append(f"{runtime} on {' and '.join(a for a, _ in fits)} ({fits[0][1]})")
        else:
            out += [f"{runtime} on {arch} ({version})" for arch, version in fits]
    return out


def _tag_hints(files: Sequence[DistFile], target: Target) -> list[str]:
    """Why the wheels of one release miss the target, in the user's terms."""
    python_ok: set[tuple[str, str]] = {(t.interpreter, t.abi) for t in target.tags}
    platforms = {t.platform for f in files for t in f.tags if (t.interpreter, t.abi) in python_ok}
    hints: list[str] = []
    if not platforms:
        hints.append(f"none of them is built for CPython {target.python_version_str}")
        return hints
    need: list[tuple[int, int]] = []
    other_arch = False
    musl = plain = False
    for platform in platforms:
        m = _MANYLINUX.fullmatch(platform)
        if m and m.group(3) == target.machine:
            need.append((int(m.group(1)), int(m.group(2))))
        for legacy, glibc in _LEGACY_TO_PEP600.items():
            if platform == f"{legacy}_{target.machine}":
                need.append(glibc)
        if platform.startswith(("manylinux", "musllinux", "linux_")) and not platform.endswith(
            "_" + target.machine
        ):
            other_arch = True
        if platform.startswith("musllinux") and platform.endswith("_" + target.machine):
            musl = True
        if platform == f"linux_{target.machine}":
            plain = True
    if need and min(need) > target.glibc:
        low = min(need)
        newer = [
            name
            for name, rt in RUNTIMES.items()
            if rt.glibc >= low and rt.python_version >= target.python_version
        ]
        hint = (
            f"its {target.machine} wheels need glibc {low[0]}.{low[1]} or newer, "
            f"but {target.runtime} runs {target.os_name} with glibc "
            f"{target.glibc[0]}.{target.glibc[1]}"
        )
        if newer:
            hint += f"; runtimes with a new enough glibc: {', '.join(newer)}"
        hints.append(hint)
    elif not need and other_arch:
        hints.append(
            f"it has no Linux wheel for {target.machine} ({target.arch}); "
            "the other architecture may have one"
        )
    if musl:
        hints.append("musllinux wheels are for musl-based Linux and do not load on Lambda")
    if plain:
        hints.append(f"plain linux_{target.machine} wheels are not portable and are never used")
    if not (need or other_arch or musl or plain):
        hints.append("it has no Linux wheel at all")
    return hints


def _pinned_version(specifier: SpecifierSet) -> Version | None:
    for spec in specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
            try:
                return Version(spec.version)
            except InvalidVersion:
                return None
    return None


def _not_found(
    page: ProjectPage, requirement: Requirement, existing: Sequence[Version], why: str
) -> str:
    lines = [f"{str(requirement)!r}: {why}"]
    if not existing:
        lines.append(f"{page.name} has no files on the index at all.")
        return "\n".join(lines)
    pin = _pinned_version(requirement.specifier)
    if pin is not None:
        at = bisect.bisect_left(existing, pin)
        near = existing[max(0, at - 3) : at + 3]
        lines.append(f"Nearest releases: {_listed(near)}")
    newest = list(reversed(existing[-10:]))
    lines.append(f"Newest releases: {_listed(newest)} ({len(existing)} in all)")
    lines.append(f"Pick an existing version, e.g. '{page.name}=={existing[-1]}'.")
    return "\n".join(lines)


def _fit_hint(
    page: ProjectPage, target: Target, exclude_newer: _dt.datetime | None, pre: bool
) -> str:
    best = candidates(page, target, prereleases=True if pre else None, exclude_newer=exclude_newer)
    if best:
        return (
            f"The newest {page.name} with a wheel for {target} is {best[0].version}: "
            f"use '{page.name}=={best[0].version}'."
        )
    return f"No release of {page.name} has a wheel for {target}."


def _diagnose(
    page: ProjectPage,
    requirement: Requirement,
    target: Target,
    *,
    exclude_newer: _dt.datetime | None,
    pre: bool,
    found: list[Candidate] | None = None,
) -> tuple[type[VersionNotFound] | type[NoCompatibleWheel], str]:
    """*found*: the requirement's candidates when the caller has them already."""
    if found is None:
        found = candidates(
            page,
            target,
            requirement.specifier,
            prereleases=True if pre else None,
            exclude_newer=exclude_newer,
        )
    if found:
        best = found[0]
        return NoCompatibleWheel, (
            f"{str(requirement)!r} does fit {target}: {best.version} ({best.file.filename})"
        )
    spec = requirement.specifier
    req = str(requirement)
    cutoff = _aware(exclude_newer)
    releases = _releases(page)
    existing = sorted(releases)

    # 1. versions the specifier admits (pre-releases as pip would let them in)
    matching = [v for v in existing if spec.contains(v, prereleases=True)]
    keep = _apply_pre(matching, _pre_policy(spec, True if pre else None))
    hidden_pre = [v for v, ok in zip(matching, keep) if not ok]
    matching = [v for v, ok in zip(matching, keep) if ok]
    if not matching:
        empty = [
            v
            for v in _parse_versions(page.versions)
            if v not in releases and spec.contains(v, prereleases=True)
        ]
        if empty:
            why = f"release {_listed(empty)} of {page.name} has no files on the index."
        else:
            why = f"no release of {page.name} matches."
        return VersionNotFound, _not_found(page, requirement, existing, why)
    newest_first = sorted(matching, reverse=True)
    files = [(v, f) for v in newest_first for f in releases[v]]

    # 2. upload time
    if cutoff is not None:
        files = [(v, f) for v, f in files if _uploaded_before(f, cutoff)]
        if not files:
            older = [v for v in existing if any(_uploaded_before(f, cutoff) for f in releases[v])]
            stamp = cutoff.isoformat()
            lines = [
                f"{req!r}: every file of the matching releases ({_listed(newest_first[:10])}) "
                f"was uploaded at or after {stamp} (exclude-newer) or has no upload time."
            ]
            if older:
                lines.append(f"Newest releases before then: {_listed(reversed(older[-10:]))}")
            lines.append("Move the exclude-newer date later or pin an older version.")
            return VersionNotFound, "\n".join(lines)

    # 3. wheels at all
    wheels = [(v, f) for v, f in files if f.is_wheel]
    if not wheels:
        versions = sorted({v for v, _ in files}, reverse=True)
        lines = [
            f"{req!r}: {page.name} {_listed(versions[:5])} "
            f"{'has' if len(versions) == 1 else 'have'} only source distributions "
            f"({files[0][1].filename}); layerbuilder installs wheels only and does not "
            "build sdists yet, not even pure-Python ones.",
            _fit_hint(page, target, exclude_newer, pre),
        ]
        return SdistOnly, "\n".join(lines)

    # 4. tags
    priority = target.tag_priority
    tagged = [(v, f) for v, f in wheels if _priority(f, priority) is not None]
    if not tagged:
        newest = wheels[0][0]
        newest_files = [f for v, f in wheels if v == newest]
        lines = [
            f"{req!r}: no wheel fits {_describe_target(target)}.",
            f"{page.name} {newest} has wheels for {_summarise_tags(newest_files)}",
        ]
        lines += [f"  - {hint}" for hint in _tag_hints(newest_files, target)]
        python = requires_python_version(target)
        excluded = {f.requires_python or "" for f in newest_files if not _python_ok(f, python)}
        if excluded:
            lines.append(
                f"  - and it requires Python {' or '.join(sorted(excluded))}, not {python}"
            )
        sdists = sorted({v for v, f in files if f.is_sdist and v >= newest}, reverse=True)
        if sdists:
            lines.append(
                f"{page.name} {_listed(sdists[:3])} also has an sdist, "
                "but layerbuilder does not build sdists yet."
            )
        lines.append(_fit_hint(page, target, exclude_newer, pre))
        elsewhere = _fits_elsewhere(page, requirement, target, exclude_newer, pre)
        if elsewhere:
            lines.append(f"The requirement does fit {'; '.join(elsewhere)}.")
        return NoCompatibleWheel, "\n".join(lines)

    # 5. Requires-Python
    python = requires_python_version(target)
    runnable = [(v, f) for v, f in tagged if _python_ok(f, python)]
    if not runnable:
        needs: dict[Version, set[str]] = {}
        for v, f in tagged:
            needs.setdefault(v, set()).add(f.requires_python or "")
        shown = [f"{v} needs Python {' or '.join(sorted(needs[v]))}" for v in list(needs)[:3]]
        lines = [
            f"{req!r}: every matching release excludes Python {python} ({target}) "
            f"by its Requires-Python: {'; '.join(shown)}.",
            _fit_hint(page, target, exclude_newer, pre),
        ]
        return NoCompatibleWheel, "\n".join(lines)

    # 6. yanked (pip uses a yanked file only when the requirement pins it)
    yanked = sorted({v for v, f in runnable if f.yanked}, reverse=True)
    lines = [
        f"{req!r}: the only files that fit {target} are yanked "
        f"({page.name} {_listed(yanked[:5])}).",
        f"Pin one with '{page.name}=={yanked[0]}' to use it anyway, or widen the requirement.",
    ]
    if hidden_pre:
        lines.append(
            f"Pre-releases also match ({_listed(hidden_pre[-3:])}); allow them with --pre."
        )
    return VersionNotFound, "\n".join(lines)


def _parse_versions(values: Iterable[str]) -> list[Version]:
    out = []
    for value in values:
        try:
            out.append(Version(value))
        except InvalidVersion:
            continue
    return out
