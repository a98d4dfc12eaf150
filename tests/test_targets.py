from __future__ import annotations

import pytest
from packaging.tags import Tag, parse_tag

from layerbuilder.errors import UnknownTarget, exit_code_for, http_status_for
from layerbuilder.targets import RUNTIMES, Target, get_target, manylinux_platforms


def test_al2_x86_64_platforms_run_from_glibc_2_26_down_with_legacy_aliases() -> None:
    platforms = get_target("python3.11", "x86_64").platforms
    assert platforms[0] == "manylinux_2_26_x86_64"
    assert platforms[-2:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64")
    i = platforms.index("manylinux_2_17_x86_64")
    assert platforms[i + 1] == "manylinux2014_x86_64"
    assert platforms[platforms.index("manylinux_2_12_x86_64") + 1] == "manylinux2010_x86_64"
    assert "manylinux_2_27_x86_64" not in platforms
    assert len(platforms) == (26 - 5 + 1) + 3


def test_al2023_arm64_platforms_stop_at_manylinux2014() -> None:
    platforms = get_target("python3.13", "arm64").platforms
    assert platforms[0] == "manylinux_2_34_aarch64"
    assert platforms[-1] == "manylinux2014_aarch64"
    assert not any("2010" in p or "manylinux1" in p for p in platforms)
    assert all(p.endswith("_aarch64") for p in platforms)


def test_manylinux_platforms_is_pure() -> None:
    assert manylinux_platforms("aarch64", (2, 17)) == (
        "manylinux_2_17_aarch64",
        "manylinux2014_aarch64",
    )


@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_no_musllinux_or_plain_linux_tags(runtime: str, arch: str) -> None:
    tags = get_target(runtime, arch).tags
    assert not [t for t in tags if "musllinux" in t.platform or t.platform.startswith("linux")]


def test_tag_order_cpython_then_abi3_then_pure() -> None:
    t = get_target("python3.12", "x86_64")
    tags = t.tags
    assert tags[0] == Tag("cp312", "cp312", "manylinux_2_34_x86_64")
    prio = t.tag_priority
    assert (
        prio[Tag("cp312", "cp312", "manylinux1_x86_64")]
        < prio[Tag("cp312", "abi3", "manylinux_2_34_x86_64")]
    )
    assert prio[Tag("cp39", "abi3", "manylinux2014_x86_64")] < prio[Tag("py3", "none", "any")]
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in prio
    assert Tag("cp312", "cp312", "manylinux_2_35_x86_64") not in prio


def test_compressed_lxml_style_tag_loads_on_al2_but_plain_2_28_does_not() -> None:
    al2 = get_target("python3.11", "x86_64").tag_priority
    al2023 = get_target("python3.12", "x86_64").tag_priority
    compressed = parse_tag("cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64")
    assert any(tag in al2 for tag in compressed)
    assert not any(tag in al2 for tag in parse_tag("cp311-cp311-manylinux_2_28_x86_64"))
    assert any(tag in al2023 for tag in parse_tag("cp312-cp312-manylinux_2_28_x86_64"))


def test_tags_match_pips_for_the_same_platform_list() -> None:
    """pip (a reference only) builds the same tag set from the same --platform list;
    it differs only in where it puts the manylinux2010/manylinux1 aliases, which
    name the same glibc as the manylinux_2_12/2_5 tags they follow in ours."""
    compat = pytest.importorskip("pip._internal.utils.compatibility_tags")
    for runtime in ("python3.9", "python3.12", "python3.14"):
        for arch in ("x86_64", "arm64"):
            t = get_target(runtime, arch)
            theirs = [
                str(x)
                for x in compat.get_supported(
                    version=t.abi[2:], platforms=list(t.platforms), impl="cp", abis=[t.abi]
                )
            ]
            ours = [str(x) for x in t.tags]
            assert sorted(theirs) == sorted(ours)

            def drop_aliases(tags: list[str]) -> list[str]:
                return [x for x in tags if "manylinux2010" not in x and "manylinux1" not in x]

            assert drop_aliases(theirs) == drop_aliases(ours)


def test_marker_environment_is_the_targets_not_the_hosts() -> None:
    env = get_target("python3.10", "arm64").marker_environment()
    assert env["platform_machine"] == "aarch64"
    assert env["python_version"] == "3.10"
    assert env["python_full_version"].startswith("3.10.")
    assert env["sys_platform"] == "linux"
    assert env["platform_system"] == "Linux"
    assert env["implementation_name"] == "cpython"


def test_site_packages_and_extension_suffixes() -> None:
    t = get_target("python3.13", "arm64")
    assert t.site_packages == "python/lib/python3.13/site-packages"
    assert t.extension_suffixes()[0] == ".cpython-313-aarch64-linux-gnu.so"
    assert str(t) == "python3.13 on arm64"


def test_targets_are_frozen_values() -> None:
    t = get_target("python3.12", "x86_64")
    assert t == Target("python3.12", "x86_64")
    assert hash(t) == hash(Target("python3.12", "x86_64"))
    with pytest.raises(AttributeError):
        t.runtime = "python3.9"  # type: ignore[misc]


def test_glibc_per_os() -> None:
    assert get_target("python3.11", "x86_64").glibc == (2, 26)
    assert get_target("python3.12", "x86_64").glibc == (2, 34)
    assert get_target("python3.14", "arm64").os_name == "Amazon Linux 2023"


def test_unknown_runtime_lists_supported_ones() -> None:
    with pytest.raises(UnknownTarget) as err:
        get_target("python3.8", "x86_64")
    msg = str(err.value)
    assert "'python3.8'" in msg
    assert "python3.9, python3.10, python3.11, python3.12, python3.13, python3.14" in msg
    assert exit_code_for(err.value) == 2
    assert http_status_for(err.value) == 400


def test_unknown_arch_lists_supported_ones() -> None:
    with pytest.raises(UnknownTarget, match=r"unknown architecture 'aarch64'.*x86_64, arm64"):
        get_target("python3.12", "aarch64")


def test_pip_args_list_every_platform() -> None:
    args = get_target("python3.11", "arm64").pip_args()
    assert args[:7] == [
        "--only-binary=:all:",
        "--python-version",
        "3.11.14",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    assert args.count("--platform") == len(get_target("python3.11", "arm64").platforms)
