"""Lambda targets as data: runtime, Python version, architecture and glibc.

A :class:`Target` is a frozen value.  Everything a target supports (its PEP 425
tags in priority order, its marker environment, its extension suffixes) is a
pure function of that value: nothing here reads the host.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import msgspec
from packaging.tags import Tag, compatible_tags, cpython_tags

from .errors import UnknownTarget

__all__ = [
    "ARCHES",
    "DEFAULT_ARCH",
    "DEFAULT_RUNTIME",
    "RUNTIMES",
    "Runtime",
    "Target",
    "get_target",
    "manylinux_platforms",
]


class Runtime(msgspec.Struct, frozen=True):
    """One Lambda Python runtime."""

    name: str
    python_version: tuple[int, int]
    os_name: str
    glibc: tuple[int, int]
    # A representative full version for `python_full_version` markers.  Lambda
    # patches runtimes in place, so this is the release current when the table
    # was last reviewed, not a promise.
    full_version: str


_AL2 = ("Amazon Linux 2", (2, 26))
_AL2023 = ("Amazon Linux 2023", (2, 34))

RUNTIMES: Mapping[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("python3.9", (3, 9), *_AL2, "3.9.25"),
        Runtime("python3.10", (3, 10), *_AL2, "3.10.19"),
        Runtime("python3.11", (3, 11), *_AL2, "3.11.14"),
        Runtime("python3.12", (3, 12), *_AL2023, "3.12.12"),
        Runtime("python3.13", (3, 13), *_AL2023, "3.13.9"),
        Runtime("python3.14", (3, 14), *_AL2023, "3.14.0"),
    )
}

# Lambda architecture name -> machine name (uname -m, wheel platform suffix).
ARCHES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

# The oldest glibc each machine has manylinux tags for (PEP 600).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 600's legacy aliases, listed straight after their glibc version.
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def manylinux_platforms(machine: str, glibc: tuple[int, int]) -> tuple[str, ...]:
    """Every manylinux platform tag a glibc *glibc* system on *machine* loads,
    newest first, with the legacy aliases where they apply.

    This is the order :func:`packaging.tags.platform_tags` gives on such a
    system; it is computed here because packaging's own function asks the host.
    Plain ``linux_*`` and every ``musllinux_*`` tag are left out: neither loads
    reliably on Lambda.
    """
    major, ceiling = glibc
    out: list[str] = []
    for minor in range(ceiling, _OLDEST_GLIBC_MINOR[machine] - 1, -1):
        out.append(f"manylinux_{major}_{minor}_{machine}")
        legacy = _LEGACY_MANYLINUX.get((major, minor))
        if legacy is not None:
            out.append(f"{legacy}_{machine}")
    return tuple(out)


class Target(msgspec.Struct, frozen=True):
    """A Lambda runtime on one architecture."""

    runtime: str
    arch: str

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UnknownTarget(
                f"unknown runtime {self.runtime!r}; supported runtimes: {', '.join(RUNTIMES)}"
            )
        if self.arch not in ARCHES:
            raise UnknownTarget(
                f"unknown architecture {self.arch!r}; supported architectures: {', '.join(ARCHES)}"
            )

    # -- plain facts ---------------------------------------------------------------

    @property
    def python_version(self) -> tuple[int, int]:
        return RUNTIMES[self.runtime].python_version

    @property
    def python_version_str(self) -> str:
        """``"3.12"``."""
        return "{}.{}".format(*self.python_version)

    @property
    def full_python_version(self) -> str:
        """``"3.12.12"``: what ``Requires-Python`` and ``python_full_version`` are
        checked against, as pip running on the runtime would check them."""
        return RUNTIMES[self.runtime].full_version

    @property
    def glibc(self) -> tuple[int, int]:
        return RUNTIMES[self.runtime].glibc

    @property
    def os_name(self) -> str:
        return RUNTIMES[self.runtime].os_name

    @property
    def machine(self) -> str:
        """``x86_64`` or ``aarch64``."""
        return ARCHES[self.arch]

    @property
    def abi(self) -> str:
        """``cp312``."""
        return "cp{}{}".format(*self.python_version)

    @property
    def site_packages(self) -> str:
        """Where wheels land inside the layer zip."""
        return f"python/lib/python{self.python_version_str}/site-packages"

    def __str__(self) -> str:
        return f"{self.runtime} on {self.arch}"

    # -- derived ----------------------------------------------------------------------

    @property
    def platforms(self) -> tuple[str, ...]:
        return manylinux_platforms(self.machine, self.glibc)

    @property
    def wheel_platforms(self) -> frozenset[str]:
        """The platform tags of the wheels the target can load: its manylinux ones
        and ``any``."""
        return frozenset(self.platforms) | {"any"}

    @property
    def tags(self) -> tuple[Tag, ...]:
        """Every tag the target loads, most preferred first (as pip orders them)."""
        return _tags(self)

    @property
    def tag_priority(self) -> Mapping[Tag, int]:
        """Tag -> rank; 0 is the most preferred."""
        return _tag_priority(self)

    def marker_environment(self) -> dict[str, str]:
        """The PEP 508 environment of the target, for evaluating markers."""
        rt = RUNTIMES[self.runtime]
        return {
            "implementation_name": "cpython",
            "implementation_version": rt.full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": rt.full_version,
            "python_version": self.python_version_str,
            "sys_platform": "linux",
        }

    def extension_suffixes(self) -> tuple[str, ...]:
        """File suffixes the target interpreter imports extension modules from."""
        return (
            f".cpython-{self.abi[2:]}-{self.machine}-linux-gnu.so",
            ".abi3.so",
            ".so",
        )

    def pip_args(self) -> list[str]:
        """The pip options that describe this target (for reference comparisons only).

        The full Python version makes pip check ``Requires-Python`` as it would on
        the runtime itself (``!=3.9.0,!=3.9.1`` admits python3.9)."""
        args = [
            "--only-binary=:all:",
            "--python-version",
            self.full_python_version,
            "--implementation",
            "cp",
            "--abi",
            self.abi,
        ]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args


@functools.cache
def _tags(target: Target) -> tuple[Tag, ...]:
    platforms = list(target.platforms)
    return (
        *cpython_tags(target.python_version, [target.abi], platforms),
        *compatible_tags(target.python_version, target.abi, platforms),
    )


@functools.cache
def _tag_priority(target: Target) -> Mapping[Tag, int]:
    priority: dict[Tag, int] = {}
    for i, tag in enumerate(_tags(target)):
        priority.setdefault(tag, i)
    return priority


DEFAULT_RUNTIME = "python3.12"
DEFAULT_ARCH = "x86_64"


def get_target(runtime: str | None = None, arch: str | None = None) -> Target:
    """The :class:`Target` for *runtime* and *arch* (``None`` means the default,
    python3.12 on x86_64); :class:`UnknownTarget` if either is not supported."""
    return Target(runtime or DEFAULT_RUNTIME, arch or DEFAULT_ARCH)
