"""Live: layerbuilder picks the same file pip picks, for popular compiled projects on
every Lambda runtime and architecture.

pip is the reference (see ``tests/pipref.py``); run with ``pytest -m live
tests/test_pip_agreement.py``.  The main matrix passes the same upload cutoff
(the session's start) to both sides, so a release landing mid-run cannot make
them differ; a smaller matrix runs without a cutoff, one with a cutoff in the
past, and a few runs cover pins, ranges and pre-releases.
"""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from pipref import PACKAGES, Outcome, compare, fetch_page

from layerbuilder.models import ProjectPage
from layerbuilder.select import candidates
from layerbuilder.targets import ARCHES, RUNTIMES, Target

pytestmark = pytest.mark.live

NOW = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
PAST = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


@functools.cache
def page(project: str) -> ProjectPage:
    return fetch_page(project)


def check(theirs: Outcome, ours: Outcome) -> None:
    assert ours.filename == theirs.filename, f"\npip:  {theirs}\nours: {ours}"
    if theirs.filename is None:
        assert ours.error is not None


@pytest.mark.parametrize("arch", list(ARCHES))
@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize("project", PACKAGES)
def test_same_pick_as_pip(project: str, runtime: str, arch: str) -> None:
    target = Target(runtime, arch)
    check(*compare(project, target, page(project), exclude_newer=NOW))


@pytest.mark.parametrize("runtime", ["python3.9", "python3.11", "python3.14"])
@pytest.mark.parametrize("project", ["numpy", "cryptography", "pydantic-core", "pillow"])
def test_same_pick_without_cutoff(project: str, runtime: str) -> None:
    target = Target(runtime, "arm64")
    check(*compare(project, target, page(project)))


@pytest.mark.parametrize("runtime", ["python3.9", "python3.12", "python3.13"])
@pytest.mark.parametrize("project", PACKAGES)
def test_same_pick_in_the_past(project: str, runtime: str) -> None:
    # in mid-2024 no project had python3.13 wheels: both sides must fail there
    target = Target(runtime, "x86_64")
    check(*compare(project, target, page(project), exclude_newer=PAST))


@pytest.mark.parametrize(
    ("requirement", "runtime", "arch"),
    [
        ("numpy==1.26.4", "python3.12", "arm64"),
        ("numpy==2.0.2", "python3.9", "x86_64"),
        ("numpy==1.26.4", "python3.13", "x86_64"),  # no wheel: both fail
        ("numpy==1.99", "python3.12", "x86_64"),  # no such version: both fail
        ("numpy<2", "python3.11", "arm64"),
        ("cryptography<42", "python3.12", "x86_64"),
        ("cryptography~=41.0.0", "python3.9", "arm64"),
        ("pandas>=2.2,<2.3", "python3.10", "x86_64"),
        ("scipy>=1.14.0rc1,<1.14.0", "python3.12", "x86_64"),  # names a pre-release
        ("pydantic-core==2.27.2", "python3.13", "arm64"),
        ("pyyaml==6.0.1", "python3.12", "x86_64"),
        ("grpcio<1.60", "python3.12", "arm64"),
    ],
)
def test_same_pick_for_specifiers(requirement: str, runtime: str, arch: str) -> None:
    name = Requirement(requirement).name
    check(*compare(requirement, Target(runtime, arch), page(name), exclude_newer=NOW))


@pytest.mark.parametrize("project", ["numpy", "pandas", "scipy", "grpcio", "pyarrow"])
def test_same_pick_with_pre(project: str) -> None:
    target = Target("python3.14", "x86_64")
    check(*compare(project, target, page(project), exclude_newer=NOW, pre=True))


def test_same_pick_for_yanked_pins() -> None:
    """Every yanked release (with a wheel for the target) of the listed projects,
    pinned: pip and layerbuilder both use it."""
    target = Target("python3.12", "x86_64")
    checked = 0
    for project in PACKAGES:
        p = page(project)
        yanked = {f.version for f in p.files if f.yanked and f.version is not None}
        for version in sorted(yanked, reverse=True)[:2]:
            pin = f"{project}=={version}"
            if not candidates(p, target, SpecifierSet(f"=={version}"), exclude_newer=NOW):
                continue
            check(*compare(pin, target, p, exclude_newer=NOW))
            checked += 1
    assert checked > 0, "no yanked release with a fitting wheel among the projects"
