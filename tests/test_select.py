"""Wheel choice on synthetic pages: each rule of pip's choice, one test at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from layerbuilder.errors import NoCompatibleWheel, SdistOnly, VersionNotFound
from layerbuilder.jsonpieces import lazy_json_api_pieces
from layerbuilder.models import DistFile, Keep, ProjectPage, parse_json_api, tag_filter
from layerbuilder.select import (
    Candidate,
    candidates,
    choose,
    explain_no_match,
    newest_candidate,
)
from layerbuilder.targets import get_target

PY39 = get_target("python3.9", "x86_64")
PY311 = get_target("python3.11", "x86_64")
PY311_ARM = get_target("python3.11", "arm64")
PY312 = get_target("python3.12", "x86_64")
PY312_ARM = get_target("python3.12", "arm64")
PY313 = get_target("python3.13", "x86_64")

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def f(
    filename: str,
    *,
    requires_python: str | None = None,
    yanked: bool = False,
    reason: str | None = None,
    uploaded: dt.datetime | None = T0,
) -> DistFile:
    return DistFile(
        project=canonicalize_name(filename.split("-", 1)[0]),
        filename=filename,
        url=f"https://files.test/packages/{filename}",
        sha256="0" * 64,
        requires_python=requires_python,
        yanked=yanked,
        yanked_reason=reason,
        upload_time=uploaded,
    )


def page(*files: DistFile, versions: tuple[str, ...] = ()) -> ProjectPage:
    return ProjectPage(name=canonicalize_name("demo"), files=files, versions=versions)


def pick(p: ProjectPage, req: str, target: object, **kw: object) -> str:
    return choose(p, Requirement(req), target, **kw).file.filename  # type: ignore[arg-type]


# -- platform tags --------------------------------------------------------------------


def test_compressed_tag_set_accepted_on_al2_and_plain_2_28_refused() -> None:
    compressed = "demo-1.0-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl"
    plain = "demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert pick(page(f(compressed)), "demo", PY311) == compressed
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(plain)), Requirement("demo"), PY311)
    assert "glibc 2.28" in str(err.value) and "glibc 2.26" in str(err.value)
    # the same wheel built for 3.12 is fine on Amazon Linux 2023 (glibc 2.34)
    plain312 = "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert pick(page(f(plain312)), "demo", PY312) == plain312


def test_manylinux_2_28_on_al2_falls_back_to_older_version() -> None:
    new = "demo-2.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    old = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert pick(page(f(new), f(old)), "demo", PY311) == old


def test_arch_picks_matching_machine() -> None:
    x86 = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    arm = "demo-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    p = page(f(x86), f(arm))
    assert pick(p, "demo", PY312) == x86
    assert pick(p, "demo", PY312_ARM) == arm
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(x86)), Requirement("demo"), PY312_ARM)
    message = str(err.value)
    assert "no Linux wheel for aarch64 (arm64)" in message
    assert "python3.12 on x86_64 (1.0)" in message


def test_newest_manylinux_preferred_within_a_version() -> None:
    old = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    new = "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert pick(page(f(old), f(new)), "demo", PY312) == new
    assert pick(page(f(new), f(old)), "demo", PY312) == new


def test_musllinux_never_chosen() -> None:
    musl = "demo-1.0-cp312-cp312-musllinux_1_2_x86_64.whl"
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(musl)), Requirement("demo"), PY312)
    assert "musllinux wheels are for musl-based Linux" in str(err.value)
    assert "musllinux_1_2_x86_64" in str(err.value)


def test_plain_linux_never_chosen() -> None:
    plain = "demo-1.0-cp312-cp312-linux_x86_64.whl"
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(plain)), Requirement("demo"), PY312)
    assert "plain linux_x86_64 wheels are not portable" in str(err.value)


def test_other_oses_only() -> None:
    mac = "demo-1.0-cp312-cp312-macosx_11_0_arm64.whl"
    win = "demo-1.0-cp312-cp312-win_amd64.whl"
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(mac), f(win)), Requirement("demo"), PY312)
    message = str(err.value)
    assert "demo 1.0 has wheels for cp312 on macosx, win_amd64" in message
    assert "it has no Linux wheel at all" in message
    assert "No release of demo has a wheel for python3.12 on x86_64." in message


# -- Python tags ----------------------------------------------------------------------


def test_abi3_chosen_when_no_exact_wheel() -> None:
    abi3 = "demo-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    other = "demo-1.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert pick(page(f(abi3), f(other)), "demo", PY312) == abi3


def test_abi3_newer_than_target_refused() -> None:
    abi3 = "demo-1.0-cp313-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(abi3)), Requirement("demo"), PY312)
    assert "none of them is built for CPython 3.12" in str(err.value)
    assert pick(page(f(abi3)), "demo", PY313) == abi3


def test_exact_abi_preferred_over_abi3_even_with_newer_glibc() -> None:
    abi3 = "demo-1.0-cp39-abi3-manylinux_2_34_x86_64.whl"
    exact = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert pick(page(f(abi3), f(exact)), "demo", PY312) == exact


def test_newest_abi3_preferred() -> None:
    old = "demo-1.0-cp37-abi3-manylinux_2_17_x86_64.whl"
    new = "demo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"
    assert pick(page(f(old), f(new)), "demo", PY312) == new
    assert pick(page(f(old), f(new)), "demo", PY39) == old


def test_pure_wheel() -> None:
    pure = "demo-1.0-py3-none-any.whl"
    assert pick(page(f(pure)), "demo", PY312) == pure
    compiled = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert pick(page(f(pure), f(compiled)), "demo", PY312) == compiled
    # version first: a newer pure wheel beats an older compiled one
    compiled_old = "demo-0.9-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert pick(page(f(pure), f(compiled_old)), "demo", PY312) == pure


def test_py2_only_wheel_refused() -> None:
    with pytest.raises(NoCompatibleWheel):
        choose(page(f("demo-1.0-py2-none-any.whl")), Requirement("demo"), PY312)


def test_free_threaded_wheel_refused() -> None:
    ft = "demo-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl"
    with pytest.raises(NoCompatibleWheel) as err:
        choose(page(f(ft)), Requirement("demo"), PY313)
    assert "cp313t" in str(err.value)


# -- build tags, ties, odd files --------------------------------------------------------


def test_files_with_the_same_tags_share_one_set_of_them() -> None:
    plat = "manylinux_2_17_x86_64.manylinux2014_x86_64"
    a = f(f"numpy-2.1.0-cp312-cp312-{plat}.whl")
    b = f(f"numpy-2.2.0-1-cp312-cp312-{plat}.whl")
    c = f("numpy-2.2.0-cp312-cp312-musllinux_1_2_x86_64.whl")
    both = {
        Tag("cp312", "cp312", "manylinux_2_17_x86_64"),
        Tag("cp312", "cp312", "manylinux2014_x86_64"),
    }
    assert a.tags == b.tags == both
    assert a.tags is b.tags  # one frozenset, not one per file
    assert c.tags == {Tag("cp312", "cp312", "musllinux_1_2_x86_64")} and c.tags is not a.tags
    assert (a.version, b.version, b.build_tag) == (Version("2.1.0"), Version("2.2.0"), (1, ""))


def test_build_tag_breaks_ties_but_not_tag_priority() -> None:
    b1 = "demo-1.0-1-cp312-cp312-manylinux_2_17_x86_64.whl"
    b2 = "demo-1.0-2-cp312-cp312-manylinux_2_17_x86_64.whl"
    none = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert pick(page(f(b2), f(none), f(b1)), "demo", PY312) == b2
    better_tag = "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert pick(page(f(b2), f(better_tag)), "demo", PY312) == better_tag


def test_equal_keys_last_listed_wins() -> None:
    a = "demo-1.0-py3-none-any.whl"
    b = "demo-1.0-py2.py3-none-any.whl"
    assert pick(page(f(a), f(b)), "demo", PY312) == b
    assert pick(page(f(b), f(a)), "demo", PY312) == a


def test_equal_versions_are_one_release() -> None:
    a = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    b = "demo-1.0.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    found = candidates(page(f(a), f(b)), PY312)
    assert [c.file.filename for c in found] == [b]


def test_unparsable_and_foreign_files_skipped() -> None:
    good = "demo-1.0-py3-none-any.whl"
    p = page(
        f("demo-notaversion!-py3-none-any.whl"),
        f("other-2.0-py3-none-any.whl"),
        f("demo-3.0.exe"),
        f(good),
    )
    assert [c.file.filename for c in candidates(p, PY312)] == [good]


def test_candidates_one_per_version_newest_first() -> None:
    p = page(
        f("demo-1.0-py3-none-any.whl"),
        f("demo-2.0-py3-none-any.whl"),
        f("demo-1.5-cp312-cp312-manylinux_2_17_x86_64.whl"),
        f("demo-1.5-py3-none-any.whl"),
        f("demo-3.0.tar.gz"),
    )
    found = candidates(p, PY312)
    assert [(str(c.version), c.file.filename) for c in found] == [
        ("2.0", "demo-2.0-py3-none-any.whl"),
        ("1.5", "demo-1.5-cp312-cp312-manylinux_2_17_x86_64.whl"),
        ("1.0", "demo-1.0-py3-none-any.whl"),
    ]
    assert all(isinstance(c, Candidate) and c.name == "demo" for c in found)
    assert [str(c.version) for c in candidates(p, PY312, SpecifierSet("<2"))] == ["1.5", "1.0"]


# -- Requires-Python ------------------------------------------------------------------


def test_requires_python_excludes_newer_releases() -> None:
    p = page(
        f("demo-2.0-py3-none-any.whl", requires_python=">=3.12"),
        f("demo-1.0-py3-none-any.whl", requires_python=">=3.8"),
    )
    assert pick(p, "demo", PY312) == "demo-2.0-py3-none-any.whl"
    assert pick(p, "demo", PY311) == "demo-1.0-py3-none-any.whl"


def test_requires_python_checks_the_runtimes_full_version() -> None:
    # Lambda runs 3.9.25, not 3.9.0 (what pip's --python-version 3.9 would check)
    p = page(
        f("demo-2.0-cp39-abi3-manylinux_2_17_x86_64.whl", requires_python="!=3.9.0,!=3.9.1,>=3.9"),
        f("demo-1.0-cp39-abi3-manylinux_2_17_x86_64.whl", requires_python=">=3.9"),
    )
    assert pick(p, "demo", PY39) == "demo-2.0-cp39-abi3-manylinux_2_17_x86_64.whl"
    p = page(
        f("demo-2.0-py3-none-any.whl", requires_python=">=3.12.1"),
        f("demo-1.0-py3-none-any.whl"),
    )
    assert pick(p, "demo", PY312) == "demo-2.0-py3-none-any.whl"
    assert pick(p, "demo", PY311) == "demo-1.0-py3-none-any.whl"


def test_invalid_requires_python_ignored() -> None:
    p = page(f("demo-1.0-py3-none-any.whl", requires_python=">=3.6.*,<4 garbage"))
    assert pick(p, "demo", PY312) == "demo-1.0-py3-none-any.whl"


def test_requires_python_excluding_everything_is_explained() -> None:
    p = page(
        f("demo-2.0-py3-none-any.whl", requires_python=">=3.13"),
        f("demo-1.0-py3-none-any.whl", requires_python=">=3.10"),
    )
    with pytest.raises(NoCompatibleWheel) as err:
        choose(p, Requirement("demo>=2"), PY312)
    message = str(err.value)
    assert not isinstance(err.value, SdistOnly)
    assert "'demo>=2'" in message
    assert "excludes Python 3.12.12 (python3.12 on x86_64)" in message
    assert "2.0 needs Python >=3.13" in message
    assert "use 'demo==1.0'" in message


# -- yanked (PEP 592) -------------------------------------------------------------------


def test_yanked_skipped() -> None:
    p = page(
        f("demo-2.0-py3-none-any.whl", yanked=True),
        f("demo-1.0-py3-none-any.whl"),
    )
    found = choose(p, Requirement("demo"), PY312)
    assert found.file.filename == "demo-1.0-py3-none-any.whl"
    assert found.warning is None


def test_pinned_yanked_used_with_warning() -> None:
    p = page(
        f("demo-2.0-py3-none-any.whl", yanked=True, reason="broken on 3.12"),
        f("demo-1.0-py3-none-any.whl"),
    )
    found = choose(p, Requirement("demo==2.0"), PY312)
    assert found.file.filename == "demo-2.0-py3-none-any.whl"
    assert found.warning == (
        "demo 2.0 is yanked (reason given: 'broken on 3.12'); using "
        "demo-2.0-py3-none-any.whl because the requirement pins that version"
    )
    assert pick(p, "demo===2.0", PY312) == "demo-2.0-py3-none-any.whl"
    # without the pin rule the yanked release is never used
    assert candidates(p, PY312, SpecifierSet("==2.0"), allow_yanked_pin=False) == []


def test_wildcard_pin_does_not_allow_yanked() -> None:
    p = page(f("demo-2.0-py3-none-any.whl", yanked=True), f("demo-1.0-py3-none-any.whl"))
    with pytest.raises(VersionNotFound) as err:
        choose(p, Requirement("demo==2.*"), PY312)
    assert "are yanked (demo 2.0)" in str(err.value)
    assert "'demo==2.0'" in str(err.value)


def test_pinned_release_with_one_good_file_uses_it() -> None:
    yanked = "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    good = "demo-2.0-py3-none-any.whl"
    p = page(f(yanked, yanked=True), f(good))
    assert pick(p, "demo==2.0", PY312) == good


# -- pre-releases -----------------------------------------------------------------------


def test_prereleases_only_when_asked_or_named_or_alone() -> None:
    p = page(f("demo-2.0rc1-py3-none-any.whl"), f("demo-1.0-py3-none-any.whl"))
    assert pick(p, "demo", PY312) == "demo-1.0-py3-none-any.whl"
    assert pick(p, "demo", PY312, pre=True) == "demo-2.0rc1-py3-none-any.whl"
    assert pick(p, "demo>=2.0rc1", PY312) == "demo-2.0rc1-py3-none-any.whl"
    assert pick(p, "demo>1.5", PY312) == "demo-2.0rc1-py3-none-any.whl"  # nothing final fits
    assert candidates(p, PY312, SpecifierSet(">1.5"), prereleases=False) == []
    only_pre = page(f("demo-2.0b1-py3-none-any.whl"))
    assert pick(only_pre, "demo", PY312) == "demo-2.0b1-py3-none-any.whl"


def test_prerelease_used_when_no_final_fits_the_target() -> None:
    # the PEP 440 fallback counts only files that fit, as pip does
    p = page(
        f("demo-1.0-cp312-cp312-musllinux_1_2_x86_64.whl"),
        f("demo-2.0rc1-py3-none-any.whl"),
    )
    assert pick(p, "demo", PY312) == "demo-2.0rc1-py3-none-any.whl"


def test_yanked_final_still_shuts_out_prereleases() -> None:
    # pip filters pre-releases before dropping yanked files
    p = page(f("demo-1.0-py3-none-any.whl", yanked=True), f("demo-2.0rc1-py3-none-any.whl"))
    with pytest.raises(VersionNotFound) as err:
        choose(p, Requirement("demo"), PY312)
    assert "allow them with --pre" in str(err.value)
    assert pick(p, "demo", PY312, pre=True) == "demo-2.0rc1-py3-none-any.whl"


# -- upload time ------------------------------------------------------------------------


def test_exclude_newer_is_strict_and_needs_upload_time() -> None:
    p = page(
        f("demo-3.0-py3-none-any.whl", uploaded=None),
        f("demo-2.0-py3-none-any.whl", uploaded=T0),
        f("demo-1.0-py3-none-any.whl", uploaded=T0 - dt.timedelta(seconds=1)),
    )
    assert pick(p, "demo", PY312) == "demo-3.0-py3-none-any.whl"
    assert pick(p, "demo", PY312, exclude_newer=T0) == "demo-1.0-py3-none-any.whl"
    later = T0 + dt.timedelta(seconds=1)
    assert pick(p, "demo", PY312, exclude_newer=later) == "demo-2.0-py3-none-any.whl"
    naive = dt.datetime(2025, 1, 1, 0, 0, 1)  # taken as UTC
    assert pick(p, "demo", PY312, exclude_newer=naive) == "demo-2.0-py3-none-any.whl"


def test_exclude_newer_shutting_out_everything_is_explained() -> None:
    p = page(
        f("demo-2.0-py3-none-any.whl", uploaded=T0),
        f("demo-1.0-py3-none-any.whl", uploaded=T0 - dt.timedelta(days=30)),
    )
    with pytest.raises(VersionNotFound) as err:
        choose(p, Requirement("demo>=2"), PY312, exclude_newer=T0)
    message = str(err.value)
    assert "uploaded at or after 2025-01-01T00:00:00+00:00" in message
    assert "Newest releases before then: 1.0" in message


# -- errors -------------------------------------------------------------------------------


def test_missing_pin_lists_nearest_and_newest() -> None:
    versions = ["1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0"]
    p = page(*(f(f"demo-{v}-py3-none-any.whl") for v in versions))
    with pytest.raises(VersionNotFound) as err:
        choose(p, Requirement("demo==1.9"), PY312)
    assert str(err.value) == (
        "'demo==1.9': no release of demo matches.\n"
        "Nearest releases: 1.1, 1.2, 1.3, 2.0, 2.1, 2.2\n"
        "Newest releases: 3.0, 2.2, 2.1, 2.0, 1.3, 1.2, 1.1, 1.0 (8 in all)\n"
        "Pick an existing version, e.g. 'demo==3.0'."
    )


def test_release_without_files() -> None:
    p = page(f("demo-1.0-py3-none-any.whl"), versions=("1.0", "2.0"))
    with pytest.raises(VersionNotFound) as err:
        choose(p, Requirement("demo==2.0"), PY312)
    assert "release 2.0 of demo has no files on the index" in str(err.value)


def test_sdist_only() -> None:
    p = page(f("demo-2.0.tar.gz"), f("demo-1.0-py3-none-any.whl"))
    with pytest.raises(SdistOnly) as err:
        choose(p, Requirement("demo>=2"), PY312)
    message = str(err.value)
    assert message == (
        "'demo>=2': demo 2.0 has only source distributions (demo-2.0.tar.gz); layerbuilder "
        "installs wheels only and does not build sdists yet, not even pure-Python ones.\n"
        "The newest demo with a wheel for python3.12 on x86_64 is 1.0: use 'demo==1.0'."
    )
    assert isinstance(err.value, NoCompatibleWheel)  # same exit code family


def test_sdist_only_without_any_wheel() -> None:
    p = page(f("demo-1.0.tar.gz"), f("demo-1.0.zip"))
    with pytest.raises(SdistOnly) as err:
        choose(p, Requirement("demo"), PY312)
    assert "No release of demo has a wheel for python3.12 on x86_64." in str(err.value)


def test_no_compatible_wheel_summary() -> None:
    files = [
        f(f"demo-2.0-cp3{m}-cp3{m}-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")
        for m in (11, 12, 13, 14)
    ] + [
        f("demo-2.0-cp313-cp313t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
        f("demo-2.0-cp311-cp311-musllinux_1_2_x86_64.whl"),
        f("demo-2.0-cp311-cp311-macosx_14_0_arm64.whl"),
        f("demo-2.0-cp311-cp311-macosx_10_13_x86_64.whl"),
        f("demo-2.0-cp311-cp311-win_amd64.whl"),
        f("demo-2.0.tar.gz"),
        f("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    ]
    p = page(*files)
    with pytest.raises(NoCompatibleWheel) as err:
        choose(p, Requirement("demo>=2"), PY311)
    assert not isinstance(err.value, SdistOnly)
    assert str(err.value) == (
        "'demo>=2': no wheel fits python3.11 on x86_64 (CPython 3.11, Amazon Linux 2 with "
        "glibc 2.26, x86_64).\n"
        "demo 2.0 has wheels for cp311\u2013cp314, cp313t on manylinux_2_27_x86_64, "
        "manylinux_2_28_x86_64, musllinux_1_2_x86_64, macosx, win_amd64\n"
        "  - its x86_64 wheels need glibc 2.27 or newer, but python3.11 runs Amazon Linux 2 "
        "with glibc 2.26; runtimes with a new enough glibc: python3.12, python3.13, "
        "python3.14\n"
        "  - musllinux wheels are for musl-based Linux and do not load on Lambda\n"
        "demo 2.0 also has an sdist, but layerbuilder does not build sdists yet.\n"
        "The newest demo with a wheel for python3.11 on x86_64 is 1.0: use 'demo==1.0'.\n"
        "The requirement does fit python3.12 on x86_64 (2.0); python3.13 on x86_64 (2.0); "
        "python3.14 on x86_64 (2.0)."
    )
    assert explain_no_match(p, Requirement("demo>=2"), PY311) == str(err.value)


def test_explain_when_something_fits() -> None:
    p = page(f("demo-1.0-py3-none-any.whl"))
    assert explain_no_match(p, Requirement("demo"), PY312) == (
        "'demo' does fit python3.12 on x86_64: 1.0 (demo-1.0-py3-none-any.whl)"
    )


def test_error_versions_are_versions() -> None:
    # Candidate.version is a Version, not a string
    found = choose(page(f("demo-1.0-py3-none-any.whl")), Requirement("demo"), PY312)
    assert found.version == Version("1.0")


def test_manylinux_order_is_the_systems_not_pips_platform_expansion() -> None:
    # packaging orders a glibc 2.26 system's platforms manylinux_2_12 before
    # manylinux1; pip given --platform manylinux2014_x86_64 moves manylinux1 up.
    # No real release has been seen where that changes the pick (docs/pip-agreement.md).
    m1 = "demo-1.0-cp311-cp311-manylinux1_x86_64.whl"
    m212 = "demo-1.0-cp311-cp311-manylinux_2_12_x86_64.whl"
    assert pick(page(f(m1), f(m212)), "demo", PY311) == m212
    assert pick(page(f(m212), f(m1)), "demo", PY311) == m212


def test_fits_elsewhere_groups_architectures() -> None:
    p = page(
        f("demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"),
        f("demo-1.0-cp312-cp312-manylinux_2_28_aarch64.whl"),
    )
    message = explain_no_match(p, Requirement("demo"), PY311)
    assert message.endswith("The requirement does fit python3.12 on x86_64 and arm64 (1.0).")


# -- over the recorded index ----------------------------------------------------------


@pytest.fixture(params=["pypi", "simple"])
def index_page(request: pytest.FixtureRequest, fake_index: object) -> object:
    """Pages as the index client reads them, from the JSON API and from PEP 691."""
    from fakeindex import INDEX_URL, SIMPLE_URL

    from layerbuilder.index import IndexClient

    client = IndexClient(INDEX_URL if request.param == "pypi" else SIMPLE_URL)
    yield client.get_project
    client.close()


@pytest.mark.parametrize(
    ("requirement", "runtime", "arch", "filename"),
    [
        # 2.0.2 is the newest numpy for 3.9
        (
            "numpy",
            "python3.9",
            "x86_64",
            "numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        (
            "numpy",
            "python3.9",
            "arm64",
            "numpy-2.0.2-cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        ),
        # 2.3+ need glibc 2.27/2.28: Amazon Linux 2 runtimes stay on 2.2.6
        (
            "numpy",
            "python3.11",
            "x86_64",
            "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        (
            "numpy",
            "python3.11",
            "arm64",
            "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        ),
        (
            "numpy",
            "python3.12",
            "x86_64",
            "numpy-2.5.5-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ),
        (
            "numpy",
            "python3.13",
            "arm64",
            "numpy-2.5.5-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        ),
        # 2.4.0 is yanked: skipped unless pinned; 2.5.0rc1 only when named
        (
            "numpy<2.5",
            "python3.12",
            "arm64",
            "numpy-2.4.6-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        ),
        (
            "numpy==2.4.0",
            "python3.12",
            "x86_64",
            "numpy-2.4.0-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ),
        (
            "numpy>=2.5.0rc1,<2.5.5",
            "python3.13",
            "x86_64",
            "numpy-2.5.0rc1-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ),
        # compressed tag set with manylinux_2_26 loads on Amazon Linux 2
        (
            "lxml",
            "python3.11",
            "x86_64",
            "lxml-6.1.3-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl",
        ),
        (
            "lxml",
            "python3.11",
            "arm64",
            "lxml-6.1.3-cp311-cp311-manylinux_2_26_aarch64.manylinux_2_28_aarch64.whl",
        ),
        # abi3: cp39-abi3 on 3.9 (Requires-Python !=3.9.0,!=3.9.1 admits 3.9.25)
        (
            "cryptography",
            "python3.9",
            "x86_64",
            "cryptography-50.0.2-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        ),
        (
            "cryptography",
            "python3.12",
            "arm64",
            "cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl",
        ),
        (
            "cryptography",
            "python3.11",
            "x86_64",
            "cryptography-50.0.2-cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        ),
        # pure wheels; 2.34.2 needs Python 3.10; 2.32.0/2.32.1 yanked
        ("requests", "python3.9", "x86_64", "requests-2.32.5-py3-none-any.whl"),
        ("requests", "python3.12", "arm64", "requests-2.34.2-py3-none-any.whl"),
        ("requests==2.32.1", "python3.12", "x86_64", "requests-2.32.1-py3-none-any.whl"),
        ("requests>=2.32,<2.32.5", "python3.12", "x86_64", None),
    ],
)
def test_recorded_picks(
    index_page: object, requirement: str, runtime: str, arch: str, filename: str | None
) -> None:
    req = Requirement(requirement)
    p = index_page(req.name)  # type: ignore[operator]
    target = get_target(runtime, arch)
    if filename is None:
        with pytest.raises(VersionNotFound) as err:
            choose(p, req, target)
        assert "are yanked (requests 2.32.1, 2.32.0)" in str(err.value)
        return
    found = choose(p, req, target)
    assert found.file.filename == filename
    assert found.file.url.startswith("https://files.test/")
    assert (found.warning is not None) == found.file.yanked
    assert found.file.yanked == requirement.endswith(("==2.4.0", "==2.32.1"))


def test_recorded_no_fit_messages(index_page: object) -> None:
    with pytest.raises(NoCompatibleWheel) as err:
        choose(index_page("numpy"), Requirement("numpy==2.3.1"), PY311)  # type: ignore[operator]
    message = str(err.value)
    assert (
        "numpy 2.3.1 has wheels for cp311\u2013cp313, cp313t, pp311 on manylinux_2_28_aarch64, "
        "manylinux_2_28_x86_64, musllinux_1_2_aarch64, musllinux_1_2_x86_64, macosx, win32, "
        "win_amd64, win_arm64\n"
    ) in message
    assert "its x86_64 wheels need glibc 2.28 or newer" in message
    assert "The newest numpy with a wheel for python3.11 on x86_64 is 2.2.6" in message
    assert (
        "does fit python3.12 on x86_64 and arm64 (2.3.1); python3.13 on x86_64 and arm64" in message
    )

    with pytest.raises(NoCompatibleWheel) as err:
        choose(index_page("scipy"), Requirement("scipy"), PY311)  # type: ignore[operator]
    message = str(err.value)
    assert "none of them is built for CPython 3.11" in message
    assert "and it requires Python >=3.12, not 3.11.14" in message

    with pytest.raises(SdistOnly) as err:
        choose(index_page("docopt"), Requirement("docopt"), PY312)  # type: ignore[operator]
    assert "docopt 0.6.2 has only source distributions (docopt-0.6.2.tar.gz)" in str(err.value)

    with pytest.raises(VersionNotFound) as err:
        choose(index_page("numpy"), Requirement("numpy==9.9"), PY312)  # type: ignore[operator]
    assert str(err.value).startswith("'numpy==9.9': no release of numpy matches.\n")
    assert "Newest releases: 2.5.5, 2.5.0rc1, 2.4.6, 2.4.0, 2.3.1, 2.2.6, 2.0.2 (7 in all)" in str(
        err.value
    )


# -- the newest candidate, reading as few versions as that needs -------------------------

FIXTURES_INDEX = Path(__file__).resolve().parent.parent / "fixtures" / "index"
FIXTURE_DOCS = sorted(FIXTURES_INDEX.glob("*.json"))


def _lazy_page(data: bytes, keep: Keep, reads: list[int]) -> ProjectPage:
    def read(offset: int, size: int) -> bytes:
        reads.append(offset)
        return data[offset : offset + size]

    page = lazy_json_api_pieces(
        iter([data]), "https://index.test/", keep, read, lambda: None, ValueError
    )
    assert page is not None
    return page


def _specifiers(versions: list[Version]) -> list[str]:
    newest, oldest = max(versions), min(versions)
    return ["", f"<{newest}", f"<={oldest}", ">=999", f"!={newest}", f"=={newest}", f"<{oldest}"]


@pytest.mark.parametrize("target", [PY39, PY312, PY313, PY312_ARM], ids=str)
@pytest.mark.parametrize("doc", FIXTURE_DOCS, ids=lambda p: p.stem)
def test_newest_candidate_is_the_first_candidate_of_the_whole_page(doc: Path, target: Any) -> None:
    data = doc.read_bytes()
    keep = tag_filter(frozenset(target.tag_priority))
    whole = parse_json_api(data, "https://index.test/", keep)
    versions = [Version(v) for v in whole.versions]
    cutoffs = [None, *sorted({f.upload_time for f in whole.files if f.upload_time})[-2:]]
    for spec in _specifiers(versions):
        for pre in (None, True):
            for cutoff in cutoffs:
                asked = {"prereleases": pre, "exclude_newer": cutoff}
                want = candidates(whole, target, SpecifierSet(spec), **asked)
                reads: list[int] = []
                got = newest_candidate(
                    _lazy_page(data, keep, reads), target, SpecifierSet(spec), **asked
                )
                assert got == (want[0] if want else None), (spec, pre, cutoff)
                assert len(reads) <= len(versions)


def test_newest_candidate_reads_the_newest_versions_only() -> None:
    data = (FIXTURES_INDEX / "numpy.json").read_bytes()
    keep = tag_filter(frozenset(PY312.tag_priority))
    reads: list[int] = []
    page = _lazy_page(data, keep, reads)
    got = newest_candidate(page, PY312)
    assert got is not None and str(got.version) == "2.5.5" and len(reads) == 1
    # below it the newest is a release candidate: the walk goes on to a final release
    reads.clear()
    got = newest_candidate(page, PY312, SpecifierSet("<2.5.5"))
    assert got is not None and str(got.version) == "2.4.6" and len(reads) == 2
    got = newest_candidate(page, PY312, SpecifierSet("<2.5.5"), prereleases=True)
    assert got is not None and str(got.version) == "2.5.0rc1"
    got = newest_candidate(page, PY312, SpecifierSet(">=2.5.0rc1,<2.5.5"))
    assert got is not None and str(got.version) == "2.5.0rc1"  # the specifier names it
    assert len(reads) == 2  # each version read once however often it is asked
    assert page.files.unread == 4  # type: ignore[attr-defined] # of 7: 2.5.5, rc1, 2.4.6 read
