"""The CLI: every command's happy path and every error class's exit code and message."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fakeindex import INDEX_URL
from wheelfactory import Member, make_wheel

from layerbuilder.cli import main

CRAFTED = "https://crafted.test/wheels/"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAYERBUILDER_INDEX_URL", INDEX_URL)
    monkeypatch.setenv("LAYERBUILDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- happy paths -----------------------------------------------------------------------


def test_build_writes_the_default_name_and_reports(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "build", "six")
    assert code == 0, err
    zip_path = tmp_path / "six_1170_py312.zip"
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert out.splitlines()[0] == "layer six_1170_py312 for python3.12 on x86_64"
    assert (
        "six==1.17.0  six-1.17.0-py2.py3-none-any.whl  "
        "sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    ) in out
    assert f"sha256 {digest}" in out.splitlines()[-1]
    assert err == ""  # no progress line when stderr is not a terminal


def test_resolve_json_names_the_wheel_and_downloads_nothing(
    fake_index: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "resolve", "numpy", "--runtime", "python3.12", "--arch", "arm64", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert (data["runtime"], data["arch"]) == ("python3.12", "arm64")
    [pkg] = data["packages"]
    assert pkg["filename"] == (
        "numpy-2.5.5-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"
    )
    assert {"name", "version", "filename", "url", "sha256", "size"} <= set(pkg)
    assert not any(c.request.url.endswith(".whl") for c in fake_index.calls)


def test_resolve_lock_then_build_lock(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "resolve", "requests", "--lock", "pylock.toml")[0] == 0
    code, _out, err = run(capsys, "build", "--lock", "pylock.toml", "-o", "a.zip")
    assert code == 0, err
    assert run(capsys, "build", "requests", "-o", "b.zip")[0] == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_targets_lists_every_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "targets")
    assert code == 0
    assert "python3.11   3.11    Amazon Linux 2     2.26   x86_64, arm64" in out
    assert "python3.14   3.14    Amazon Linux 2023  2.34   x86_64, arm64" in out


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "build", "--help")
    assert code == 0
    assert "10  integrity failure" in out


# -- error paths: one per error class ------------------------------------------------------


def _expect(capsys: pytest.CaptureFixture[str], code: int, needles: list[str], *argv: str) -> str:
    got, _out, err = run(capsys, *argv)
    assert got == code, err
    assert err.startswith("layerbuilder: error: ") or code == 8
    for needle in needles:
        assert needle in err
    return err


def test_usage_errors_exit_2(fake_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _expect(
        capsys,
        2,
        ["'python3.8'", "python3.9, python3.10"],
        "build",
        "six",
        "--runtime",
        "python3.8",
    )
    _expect(capsys, 2, ["'sparc'", "x86_64, arm64"], "resolve", "six", "--arch", "sparc")
    _expect(capsys, 2, ["no requirements given", "-r FILE"], "build")
    _expect(
        capsys,
        2,
        ["'bad name!'", "[A-Za-z0-9_-]{1,140}"],
        "build",
        "six",
        "--layer-name",
        "bad name!",
    )
    _expect(capsys, 2, ["'numpy==='"], "resolve", "numpy===")
    _expect(
        capsys, 2, ["'yesterday'", "ISO 8601"], "resolve", "six", "--exclude-newer", "yesterday"
    )
    assert main(["frobnicate"]) == 2


def test_requirements_file_errors_quote_file_and_line(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "req.txt").write_text("six\n-e ./src\n")
    _expect(capsys, 2, ["req.txt:2"], "resolve", "-r", "req.txt")


def test_not_found_exits_3(fake_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _expect(capsys, 3, ["'no-such-project-here'"], "resolve", "no-such-project-here")
    _expect(capsys, 3, ["requests==0.0.1", "2.34.2"], "resolve", "requests==0.0.1", "--no-deps")


def test_conflict_exits_4(fake_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _expect(capsys, 4, ["urllib3"], "resolve", "requests==2.34.2", "urllib3<1.21.1")


def test_too_large_exits_5(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "resolve", "six", "--lock", "pylock.toml")[0] == 0
    lock = tmp_path / "pylock.toml"
    lock.write_text(lock.read_text().replace("size = 11050", "size = 300000000"))
    _expect(capsys, 5, ["six", "250.0 MB", "--exclude"], "build", "--lock", "pylock.toml")
    assert not list(tmp_path.glob("*.zip"))


def test_no_wheel_for_target_exits_6(fake_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _expect(
        capsys,
        6,
        ["numpy==2.0.2", "CPython 3.14", "numpy==2.5.5"],
        "resolve",
        "numpy==2.0.2",
        "--runtime",
        "python3.14",
    )
    _expect(capsys, 6, ["docopt", "sdist"], "build", "docopt")


def _crafted_lock(
    fake_index: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], wheel: Path
) -> None:
    """Lock six, then swap in a crafted wheel served from another host."""
    data = wheel.read_bytes()
    fake_index.add("GET", CRAFTED + wheel.name, body=data)
    assert run(capsys, "resolve", "six", "--lock", "pylock.toml")[0] == 0
    lock = tmp_path / "pylock.toml"
    text = lock.read_text()
    start = text.index('url = "') + len('url = "')
    old_url = text[start : text.index('"', start)]
    text = text.replace(old_url, CRAFTED + wheel.name)
    text = text.replace("six-1.17.0-py2.py3-none-any.whl", wheel.name)
    text = text.replace("size = 11050", f"size = {len(data)}")
    text = text.replace(
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        hashlib.sha256(data).hexdigest(),
    )
    lock.write_text(text)


def test_unsafe_wheel_exits_7(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "w").mkdir()
    wheel = make_wheel(
        tmp_path / "w",
        "six",
        "1.17.0",
        [Member("../../etc/evil.py", b"x = 1\n")],
        tag="py2.py3-none-any",
    )
    _crafted_lock(fake_index, tmp_path, capsys, wheel)
    _expect(capsys, 7, ["../../etc/evil.py", wheel.name], "build", "--lock", "pylock.toml")
    assert not list(tmp_path.glob("*.zip"))


def test_verification_failure_exits_8_and_leaves_no_zip(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "w").mkdir()
    wheel = make_wheel(
        tmp_path / "w",
        "six",
        "1.17.0",
        [Member("six_ext.cpython-311-x86_64-linux-gnu.so", b"\x7fELF not really")],
        tag="py2.py3-none-any",
    )
    _crafted_lock(fake_index, tmp_path, capsys, wheel)
    err = _expect(
        capsys,
        8,
        ["six_ext.cpython-311-x86_64-linux-gnu.so", "--no-verify"],
        "build",
        "--lock",
        "pylock.toml",
    )
    assert "python3.12" in err
    assert not list(tmp_path.glob("*.zip"))
    # the same zip, kept with --no-verify, fails `verify` with exit 8 and says why
    assert run(capsys, "build", "--lock", "pylock.toml", "--no-verify", "-o", "x.zip")[0] == 0
    code, out, _ = run(capsys, "verify", "x.zip", "--runtime", "python3.12")
    assert code == 8
    assert "six_ext.cpython-311-x86_64-linux-gnu.so" in out
    code, out, _ = run(capsys, "verify", "x.zip", "--runtime", "python3.12", "--json")
    assert code == 8
    assert json.loads(out)["ok"] is False


def test_index_unreachable_exits_9(fake_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _expect(
        capsys,
        9,
        ["https://down.test/pypi/six/json", "--index-url"],
        "resolve",
        "six",
        "--index-url",
        "https://down.test/pypi",
    )


def test_integrity_failure_exits_10(
    fake_index: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "resolve", "six", "--lock", "pylock.toml")[0] == 0
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        lock.read_text().replace(
            "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274", "ab" * 32
        )
    )
    _expect(
        capsys, 10, ["six-1.17.0-py2.py3-none-any.whl", "ab" * 32], "build", "--lock", "pylock.toml"
    )
    assert not list(tmp_path.glob("*.zip"))


def test_aws_failure_exits_11(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        zf.writestr("python/x.py", "x = 1\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _expect(capsys, 11, ["127.0.0.1:9"], "publish", "l.zip", "--layer-name", "x")


def test_publish_rejects_a_missing_zip(capsys: pytest.CaptureFixture[str]) -> None:
    _expect(capsys, 2, ["'nope.zip'"], "publish", "nope.zip", "--layer-name", "x")
    _expect(capsys, 2, ["'nope.zip'"], "verify", "nope.zip")


def test_the_command_exits_with_mains_code_and_all_its_output() -> None:
    """`python -m layerbuilder` (like the console script) ends with os._exit after
    flushing: nothing may be lost, the exit code is main's."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "layerbuilder", "targets"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()  # every line arrived, the last one too
    assert lines[0].split() == ["runtime", "python", "os", "glibc", "arches"]
    assert lines[-1].startswith("python3.14 ") and len(lines) == 7
    done = subprocess.run(
        [sys.executable, "-m", "layerbuilder", "resolve", "bad req!!"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("layerbuilder: error: 'bad req!!' is not a valid requirement")
