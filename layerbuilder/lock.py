"""PEP 751 lock files (``pylock.toml``) for a :class:`~layerbuilder.plan.Plan`.

:func:`write_lock` records a plan: each package's version and its one wheel
(URL, size, sha256, upload time), the target's environment marker, and in
``[tool.layerbuilder]`` the target (runtime, arch), the requirements and the
exclusions.  The text is a pure function of the plan, so equal plans give
byte-identical locks.

:func:`read_lock` turns a lock back into a plan for a target, and refuses
(:class:`~layerbuilder.errors.LockMismatch`) one made for another target.  Locks
written by other tools are read too, when every package they select for the
target has a wheel with a URL and a sha256.

The writer is a few lines of our own for this fixed shape; reading uses
``tomllib`` (``tomli`` before Python 3.11).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .errors import LockMismatch, UnknownTarget
from .models import DistFile
from .plan import Plan, PlannedWheel
from .targets import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

__all__ = ["dumps_lock", "environment_marker", "loads_lock", "read_lock", "write_lock"]

LOCK_VERSION = "1.0"
TOOL = "layerbuilder"


def environment_marker(target: Target) -> str:
    """The PEP 508 marker that holds exactly on *target*."""
    return (
        f"sys_platform == 'linux' and platform_machine == '{target.machine}' "
        f"and implementation_name == 'cpython' and python_version == '{target.python_version_str}'"
    )


# -- writing ------------------------------------------------------------------------


def _str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _time(value: _dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    text = value.astimezone(_dt.timezone.utc).isoformat()
    return text[: -len("+00:00")] + "Z"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, _dt.datetime):
        return _time(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the lock")


def _table(items: Mapping[str, Any]) -> list[str]:
    return [f"{key} = {_value(value)}" for key, value in items.items() if value is not None]


def _wheel(f: DistFile) -> dict[str, Any]:
    wheel: dict[str, Any] = {"name": f.filename}
    if f.upload_time is not None:
        wheel["upload-time"] = f.upload_time
    wheel["url"] = f.url
    if f.size is not None:
        wheel["size"] = f.size
    wheel["hashes"] = {"sha256": f.sha256} if f.sha256 else {}
    return wheel


def dumps_lock(plan: Plan) -> str:
    """The ``pylock.toml`` text for *plan*."""
    target = plan.target
    lines = _table(
        {
            "lock-version": LOCK_VERSION,
            "environments": [environment_marker(target)],
            "requires-python": f"=={target.python_version_str}.*",
            "created-by": TOOL,
        }
    )
    for p in plan.packages:
        f = p.file
        lines += ["", "[[packages]]"]
        lines += _table(
            {
                "name": p.name,
                "version": p.version,
                "requires-python": f.requires_python,
                "dependencies": [{"name": d} for d in p.requires] or None,
            }
        )
        lines += ["wheels = [", f"    {_value(_wheel(f))},", "]"]
        tool: dict[str, Any] = {}
        if f.yanked:
            tool["yanked"] = f.yanked_reason or True
        if f.has_metadata:
            tool["core-metadata"] = {"sha256": f.metadata_sha256} if f.metadata_sha256 else True
        if tool:
            lines += ["", f"[packages.tool.{TOOL}]", *_table(tool)]
    lines += ["", f"[tool.{TOOL}]"]
    lines += _table(
        {
            "runtime": target.runtime,
            "arch": target.arch,
            "requirements": list(plan.requirements),
            "excluded": [{"name": n, "required-by": list(by)} for n, by in plan.excluded],
        }
    )
    return "\n".join(lines) + "\n"


def write_lock(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write *plan* to *path* (atomically: a temporary file, then a rename)."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(dumps_lock(plan).encode("utf-8"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# -- reading ------------------------------------------------------------------------


def _matches(marker: str, env: Mapping[str, str], where: str) -> bool:
    try:
        return Marker(marker).evaluate({**env, "extra": ""})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
        raise LockMismatch(f"{where}: cannot evaluate marker {marker!r}: {exc}") from None


def _check_target(data: Mapping[str, Any], target: Target, where: str) -> None:
    tool = (data.get("tool") or {}).get(TOOL)
    again = "resolve again for this target, or build with the lock's own --runtime/--arch"
    if isinstance(tool, Mapping) and "runtime" in tool:
        try:
            made_for = Target(str(tool.get("runtime")), str(tool.get("arch")))
        except UnknownTarget as exc:
            raise LockMismatch(f"{where}: [tool.{TOOL}] names an unknown target: {exc}") from None
        if made_for != target:
            raise LockMismatch(
                f"{where} was made for {made_for}, not {target}: resolve again with "
                f"--runtime {target.runtime} --arch {target.arch}, or build it with "
                f"--runtime {made_for.runtime} --arch {made_for.arch}"
            )
        return
    env = target.marker_environment()
    environments = data.get("environments")
    if environments and not any(_matches(str(m), env, where) for m in environments):
        raise LockMismatch(
            f"{where} was made for the environments {list(environments)}, none of which "
            f"is {target}: {again}"
        )
    rp = data.get("requires-python")
    if rp:
        try:
            ok = SpecifierSet(str(rp)).contains(f"{target.python_version_str}.0", True)
        except InvalidSpecifier:
            raise LockMismatch(f"{where}: requires-python {rp!r} does not parse") from None
        if not ok:
            raise LockMismatch(
                f"{where} requires Python {rp}, but {target} runs "
                f"Python {target.python_version_str}: {again}"
            )


def _pick_wheel(pkg: Mapping[str, Any], target: Target, where: str) -> Mapping[str, Any]:
    name = pkg.get("name")
    wheels = pkg.get("wheels") or []
    if not wheels:
        raise LockMismatch(
            f"{where}: package {name!r} has no wheels in the lock (sdist, VCS or "
            "directory sources are not supported): lock it with wheels only"
        )
    best: tuple[int, Mapping[str, Any]] | None = None
    priority = target.tag_priority
    for wheel in wheels:
        filename = str(wheel.get("name") or str(wheel.get("url", "")).rsplit("/", 1)[-1])
        probe = DistFile(canonicalize_name(str(name)), filename, "")
        ranks = [priority[t] for t in probe.tags if t in priority]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), {**wheel, "name": filename})
    if best is None:
        raise LockMismatch(
            f"{where}: none of the wheels of {name} {pkg.get('version')} fits {target}"
        )
    return best[1]


def _dist_file(pkg: Mapping[str, Any], wheel: Mapping[str, Any], where: str) -> DistFile:
    name = canonicalize_name(str(pkg["name"]))
    url = wheel.get("url")
    sha256 = (wheel.get("hashes") or {}).get("sha256")
    if not url:
        raise LockMismatch(f"{where}: the wheel of {name} has no url; only URL wheels are built")
    if not sha256:
        raise LockMismatch(
            f"{where}: the wheel {wheel['name']} has no sha256 hash; downloads are checked "
            "against it, so the lock must give one"
        )
    tool = (pkg.get("tool") or {}).get(TOOL) or {}
    yanked = tool.get("yanked", False)
    core = tool.get("core-metadata", False)
    uploaded = wheel.get("upload-time")
    if isinstance(uploaded, _dt.datetime) and uploaded.tzinfo is None:
        uploaded = uploaded.replace(tzinfo=_dt.timezone.utc)
    size = wheel.get("size")
    return DistFile(
        project=name,
        filename=str(wheel["name"]),
        url=str(url),
        sha256=str(sha256).lower(),
        size=int(size) if isinstance(size, int) else None,
        requires_python=pkg.get("requires-python"),
        yanked=bool(yanked),
        yanked_reason=yanked if isinstance(yanked, str) else None,
        upload_time=uploaded if isinstance(uploaded, _dt.datetime) else None,
        has_metadata=bool(core),
        metadata_sha256=core.get("sha256") if isinstance(core, Mapping) else None,
    )


def _names(deps: Iterable[Any]) -> list[str]:
    return [
        canonicalize_name(str(d["name"])) for d in deps if isinstance(d, Mapping) and "name" in d
    ]


def loads_lock(text: str, target: Target, *, where: str = "the lock") -> Plan:
    """Parse lock *text* into a :class:`Plan` for *target*."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockMismatch(f"{where} is not valid TOML: {exc}") from None
    version = str(data.get("lock-version", ""))
    if not version.startswith("1."):
        raise LockMismatch(
            f"{where} has lock-version {version or 'missing'!r}; only PEP 751 "
            "lock-version 1.x is understood"
        )
    _check_target(data, target, where)
    env = target.marker_environment()
    chosen: list[tuple[str, str, DistFile, list[str]]] = []
    try:
        for pkg in data.get("packages") or []:
            name: str = canonicalize_name(str(pkg["name"]))
            marker = pkg.get("marker")
            if marker and not _matches(str(marker), env, where):
                continue
            wheel = _pick_wheel(pkg, target, where)
            file = _dist_file(pkg, wheel, where)
            pkg_version = str(pkg.get("version") or file.version or "")
            if not pkg_version:
                raise LockMismatch(f"{where}: package {name!r} has no version")
            Version(pkg_version)
            chosen.append((name, pkg_version, file, _names(pkg.get("dependencies") or [])))
    except (KeyError, TypeError, ValueError) as exc:
        raise LockMismatch(f"{where}: a [[packages]] entry is malformed ({exc!r})") from None
    present = {name for name, *_ in chosen}
    requires = {name: sorted(set(deps) & present - {name}) for name, _, _, deps in chosen}
    required_by: dict[str, set[str]] = {name: set() for name in present}
    for parent, deps in requires.items():
        for dep in deps:
            required_by[dep].add(parent)
    tool = (data.get("tool") or {}).get(TOOL) or {}
    excluded = tuple(
        (str(e["name"]), tuple(str(b) for b in e.get("required-by", ())))
        for e in tool.get("excluded", ())
    )
    return Plan(
        target=target,
        packages=tuple(
            PlannedWheel(
                name=name,
                version=version,
                file=file,
                requires=tuple(requires[name]),
                required_by=tuple(sorted(required_by[name])),
            )
            for name, version, file, _ in chosen
        ),
        requirements=tuple(str(r) for r in tool.get("requirements", ())),
        excluded=excluded,
    )


def read_lock(path: str | os.PathLike[str], target: Target) -> Plan:
    """Read the ``pylock.toml`` at *path* as a :class:`Plan` for *target*.

    Raises :class:`LockMismatch` for a lock made for another target, one that
    does not parse, or one holding packages without a wheel for *target*.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LockMismatch(f"cannot read lock file {os.fspath(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LockMismatch(f"lock file {os.fspath(path)!r} is not UTF-8 text") from None
    return loads_lock(text, target, where=os.fspath(path))
