"""Requirements files: what is read, what is refused, and where errors point."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuilder.errors import InvalidRequirement
from layerbuilder.requirements import (
    RequirementLine,
    RequirementsFile,
    parse_requirements,
    parse_requirements_file,
)

SHA_A = "a" * 64
SHA_B = "B" * 64


def texts(rf: RequirementsFile) -> list[str]:
    return [str(line) for line in rf]


def test_comments_blanks_continuations_markers_extras() -> None:
    rf = parse_requirements(
        "# a comment\n"
        "\n"
        "requests>=2  # trailing comment\n"
        "pyjwt[crypto] \\\n"
        "    >=2.8\n"
        'numpy; python_version < "3.13"\n'
        "   \n"
        "six\t# tab before the comment\n",
        source="req.txt",
    )
    assert texts(rf) == [
        "requests>=2",
        "pyjwt[crypto]>=2.8",
        'numpy; python_version < "3.13"',
        "six",
    ]
    assert [line.origin for line in rf] == ["req.txt:3", "req.txt:4", "req.txt:6", "req.txt:8"]
    assert all(isinstance(line, RequirementLine) and not line.constraint for line in rf)
    assert rf.index_url is None and rf.pre is False


def test_a_hash_sign_needs_whitespace_before_it_to_start_a_comment() -> None:
    # pip's rule: "#" starts a comment at the start of a line or after whitespace
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements("six#egg\n", source="r.txt")
    assert str(err.value).startswith("r.txt:1: 'six#egg'")


def test_hashes_on_one_line_and_across_continuations() -> None:
    rf = parse_requirements(
        f"requests==2.34.2 --hash=sha256:{SHA_A} \\\n    --hash sha256:{SHA_B}\n"
        f"six==1.17.0 --hash=sha512:{'c' * 128} --hash=sha256:{SHA_A}\n"
    )
    first, second = list(rf)
    assert str(first) == "requests==2.34.2"
    assert first.hashes == frozenset({SHA_A, SHA_B.lower()})
    assert second.hashes == frozenset({SHA_A})  # sha512 accepted, only sha256 is checked


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("six --hash=sha256:abc", "a sha256 digest is 64 hex digits"),
        ("six --hash=md5:abc", "unknown hash algorithm 'md5'"),
        ("six --hash=abc", "not of the form sha256:<hex digest>"),
        (f"six --hash=sha512:{'c' * 128}", "only sha256 hashes can be checked"),
        ("six --no-deps", "unsupported option '--no-deps' on a requirement line"),
    ],
)
def test_bad_hash_options(line: str, reason: str) -> None:
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements(f"\n{line}\n", source="h.txt")
    assert str(err.value).startswith(f"h.txt:2: {line!r}: ")
    assert reason in str(err.value)


def test_includes_are_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "base.txt").write_text("six\n-r more/extra.txt\n")
    (tmp_path / "deps" / "more").mkdir()
    (tmp_path / "deps" / "more" / "extra.txt").write_text("idna\n")
    (tmp_path / "main.txt").write_text("requests\n--requirement=deps/base.txt\ncertifi\n")
    rf = parse_requirements_file(tmp_path / "main.txt")
    assert texts(rf) == ["requests", "six", "idna", "certifi"]
    assert [Path(line.origin.rsplit(":", 1)[0]).name for line in rf] == [
        "main.txt",
        "base.txt",
        "extra.txt",
        "main.txt",
    ]
    assert rf.lines[2].origin == f"{tmp_path / 'deps' / 'more' / 'extra.txt'}:1"
    assert len(rf.files) == 3


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("six\n-r b.txt\n")
    (tmp_path / "b.txt").write_text("idna\n-r a.txt\n")
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements_file(tmp_path / "a.txt")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'b.txt'}:2: requirements files include each other: ")
    chain = msg.split("include each other: ", 1)[1].split(" -> ")
    assert [Path(p).name for p in chain] == ["a.txt", "b.txt", "a.txt"]


def test_missing_include_quotes_where_it_was_named(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("six\n-r nowhere.txt\n")
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements_file(tmp_path / "r.txt")
    assert str(err.value).startswith(f"{tmp_path / 'r.txt'}:2: cannot read requirements file ")
    assert "nowhere.txt" in str(err.value)
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements_file(tmp_path / "absent.txt")
    assert str(err.value).startswith("cannot read requirements file ")


def test_constraints(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text(f"urllib3<2 --hash=sha256:{SHA_A}\n")
    (tmp_path / "r.txt").write_text("requests\n-c c.txt\n")
    rf = parse_requirements_file(tmp_path / "r.txt")
    assert [(str(x), x.constraint) for x in rf] == [("requests", False), ("urllib3<2", True)]
    assert [str(x) for x in rf.requirements] == ["requests"]
    assert [str(x) for x in rf.constraints] == ["urllib3<2"]
    assert rf.constraints[0].hashes == frozenset({SHA_A})
    (tmp_path / "c.txt").write_text("pyjwt[crypto]<3\n")
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements_file(tmp_path / "r.txt")
    assert "a constraint cannot have extras" in str(err.value)


def test_index_url_is_honoured_and_a_second_index_refused() -> None:
    rf = parse_requirements("--index-url https://index.test/simple/\nsix\n")
    assert rf.index_url == "https://index.test/simple"
    assert parse_requirements("-i https://index.test/pypi\n").index_url == "https://index.test/pypi"
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements("-i https://index.test/a\n-i https://index.test/b\n", source="r")
    assert str(err.value).startswith("r:2: ")
    assert "r:1 already gave 'https://index.test/a'" in str(err.value)
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements("--extra-index-url https://index.test/extra\n", source="r")
    assert "reads one index only" in str(err.value)


def test_harmless_options() -> None:
    rf = parse_requirements("--pre\n--only-binary :all:\n--prefer-binary\n--require-hashes\nsix\n")
    assert rf.pre is True and texts(rf) == ["six"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-e .", "editable installs are not supported"),
        ("--editable git+https://vcs.test/x.git", "editable installs are not supported"),
        ("https://files.test/six-1.17.0-py2.py3-none-any.whl", "URLs and local paths"),
        ("./vendor/six-1.17.0-py2.py3-none-any.whl", "URLs and local paths"),
        ("/abs/path/pkg", "URLs and local paths"),
        ("pkg.tar.gz", "URLs and local paths"),
        ("six @ https://files.test/six.whl", "direct URL references are not supported"),
        ("--find-links https://files.test/", "--find-links is not supported"),
        ("--no-binary :all:", "never builds from source"),
        ("--trusted-host index.test", "unsupported option '--trusted-host'"),
        ("requests>>2", "not a valid requirement"),
        ("-r", "-r needs a file name"),
    ],
)
def test_refused_lines_quote_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements(f"six\n# two\n{line}\n", source="requirements.txt")
    msg = str(err.value)
    assert msg.startswith(f"requirements.txt:3: {line!r}: "), msg
    assert reason in msg


def test_continuation_reports_its_first_line() -> None:
    with pytest.raises(InvalidRequirement) as err:
        parse_requirements("six\nrequests \\\n  >>2\n", source="r.txt")
    assert str(err.value).startswith("r.txt:2: ")


def test_requirement_line_is_a_plain_string_too() -> None:
    line = RequirementLine("six>=1", origin="r.txt:1", hashes=frozenset({SHA_A}))
    assert line == "six>=1" and type(str(line)) is str
    assert repr(line) == "RequirementLine('six>=1', origin='r.txt:1')"
    # what the CLI does with it: extend a list of strings
    reqs: list[str] = ["idna"]
    reqs.extend(parse_requirements("six\n"))
    assert reqs == ["idna", "six"]
