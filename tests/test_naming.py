from __future__ import annotations

import pytest

from layerbuilder.errors import InvalidLayerName
from layerbuilder.naming import default_layer_name, layer_name, validate_layer_name
from layerbuilder.targets import get_target


def test_seed_convention_python38() -> None:
    assert layer_name("scikit-learn", "0.22.2.post1", (3, 8), "x86_64") == (
        "scikit-learn_0222post1_py38"
    )


def test_project_name_is_pep503_normalised() -> None:
    assert layer_name("Scikit_Learn", "0.22.2.post1", (3, 8), "x86_64") == (
        "scikit-learn_0222post1_py38"
    )
    assert layer_name("zope.interface", "6.0", (3, 11), "x86_64") == "zope-interface_60_py311"
    assert layer_name("A__B--c..D", "1", (3, 9), "x86_64") == "a-b-c-d_1_py39"


def test_default_layer_name_from_target() -> None:
    assert default_layer_name("numpy", "1.26.4", get_target("python3.12", "x86_64")) == (
        "numpy_1264_py312"
    )
    assert default_layer_name("numpy", "1.26.4", get_target("python3.12", "arm64")) == (
        "numpy_1264_py312_arm64"
    )
    assert default_layer_name("NumPy", "2.0.0rc1", get_target("python3.9", "x86_64")) == (
        "numpy_200rc1_py39"
    )


def test_version_keeps_only_ascii_letters_and_digits() -> None:
    assert (
        layer_name("pkg", "1.0+local.Build-7", (3, 13), "arm64") == "pkg_10localBuild7_py313_arm64"
    )


def test_long_names_truncated_deterministically() -> None:
    long_a = layer_name("a" * 200, "1.0", (3, 12), "arm64")
    long_b = layer_name("a" * 201, "1.0", (3, 12), "arm64")
    assert len(long_a) == 140 and len(long_b) == 140
    assert long_a != long_b  # the hash keeps them apart
    assert long_a == layer_name("a" * 200, "1.0", (3, 12), "arm64")
    assert long_a.endswith("_py312_arm64")
    assert long_a.startswith("a" * 100)
    assert validate_layer_name(long_a) == long_a


def test_exactly_140_not_truncated() -> None:
    tail = "_1_py312"
    name = layer_name("a" * (140 - len(tail)), "1", (3, 12), "x86_64")
    assert name == "a" * (140 - len(tail)) + tail
    assert len(name) == 140


def test_generated_names_are_always_valid() -> None:
    for project, version in [("ümlaut", "1.0"), ("--", "!!"), ("x", "")]:
        name = layer_name(project, version, (3, 12), "x86_64")
        assert validate_layer_name(name) == name


@pytest.mark.parametrize("good", ["a", "A-b_9", "x" * 140, "numpy_1264_py312_arm64"])
def test_validate_accepts(good: str) -> None:
    assert validate_layer_name(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "it is empty"),
        ("x" * 141, "141 characters"),
        ("my layer", "' '"),
        ("numpy.1", "'.'"),
        ("café", "'é'"),
        ("a/b", "'/'"),
    ],
)
def test_validate_rejects_quoting_name_and_rule(bad: str, why: str) -> None:
    with pytest.raises(InvalidLayerName) as info:
        validate_layer_name(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "[A-Za-z0-9_-]{1,140}" in message
    assert why in message
