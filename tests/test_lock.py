"""PEP 751 locks: the exact text written, round trips, and refusals."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeindex import INDEX_URL

from layerbuilder.errors import LockMismatch
from layerbuilder.index import IndexClient
from layerbuilder.lock import dumps_lock, environment_marker, loads_lock, read_lock, write_lock
from layerbuilder.models import DistFile
from layerbuilder.plan import Plan, PlannedWheel
from layerbuilder.resolver import resolve
from layerbuilder.targets import get_target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PY312 = get_target("python3.12", "x86_64")
PY312_ARM = get_target("python3.12", "arm64")
UTC = dt.timezone.utc


@pytest.fixture
def client(fake_index: Any) -> Iterator[IndexClient]:
    c = IndexClient(INDEX_URL)
    yield c
    c.close()


def small_plan() -> Plan:
    six = DistFile(
        project="six",  # type: ignore[arg-type]
        filename="six-1.17.0-py2.py3-none-any.whl",
        url="https://files.test/packages/six-1.17.0-py2.py3-none-any.whl",
        sha256="1" * 64,
        size=11050,
        requires_python=">=2.7",
        upload_time=dt.datetime(2024, 12, 4, 17, 35, 26, 475000, tzinfo=UTC),
        has_metadata=True,
        metadata_sha256="2" * 64,
    )
    odd = DistFile(
        project="odd",  # type: ignore[arg-type]
        filename="odd-1.0-py3-none-any.whl",
        url='https://files.test/odd-1.0-py3-none-any.whl?x="q"\\',
        sha256="3" * 64,
        yanked=True,
        yanked_reason="broken\tbuild",
    )
    return Plan(
        target=PY312,
        packages=(
            PlannedWheel("odd", "1.0", odd, requires=("six",)),
            PlannedWheel("six", "1.17.0", six, required_by=("odd",)),
        ),
        requirements=('odd; python_version >= "3.9"',),
        excluded=(("boto3", ("odd",)), ("botocore", ())),
    )


EXPECTED = """\
lock-version = "1.0"
environments = ["sys_platform == 'linux' and platform_machine == 'x86_64' and implementation_name == 'cpython' and python_version == '3.12'"]
requires-python = "==3.12.*"
created-by = "layerbuilder"

[[packages]]
name = "odd"
version = "1.0"
dependencies = [{name = "six"}]
wheels = [
    {name = "odd-1.0-py3-none-any.whl", url = "https://files.test/odd-1.0-py3-none-any.whl?x=\\"q\\"\\\\", hashes = {sha256 = "3333333333333333333333333333333333333333333333333333333333333333"}},
]

[packages.tool.layerbuilder]
yanked = "broken\\u0009build"

[[packages]]
name = "six"
version = "1.17.0"
requires-python = ">=2.7"
wheels = [
    {name = "six-1.17.0-py2.py3-none-any.whl", upload-time = 2024-12-04T17:35:26.475000Z, url = "https://files.test/packages/six-1.17.0-py2.py3-none-any.whl", size = 11050, hashes = {sha256 = "1111111111111111111111111111111111111111111111111111111111111111"}},
]

[packages.tool.layerbuilder]
core-metadata = {sha256 = "2222222222222222222222222222222222222222222222222222222222222222"}

[tool.layerbuilder]
runtime = "python3.12"
arch = "x86_64"
requirements = ["odd; python_version >= \\"3.9\\""]
excluded = [{name = "boto3", required-by = ["odd"]}, {name = "botocore", required-by = []}]
"""  # noqa: E501


def test_exact_text_and_round_trip() -> None:
    plan = small_plan()
    text = dumps_lock(plan)
    assert text == EXPECTED
    back = loads_lock(text, PY312)
    assert back == plan
    assert back.content_hash == plan.content_hash
    assert dumps_lock(back) == text


def test_text_is_pep_751_toml() -> None:
    data = tomllib.loads(dumps_lock(small_plan()))
    assert data["lock-version"] == "1.0"
    assert data["created-by"] == "layerbuilder"
    six = data["packages"][1]
    assert set(six) == {"name", "version", "requires-python", "wheels", "tool"}
    (wheel,) = six["wheels"]
    assert wheel["upload-time"] == dt.datetime(2024, 12, 4, 17, 35, 26, 475000, tzinfo=UTC)
    assert wheel["size"] == 11050 and wheel["hashes"] == {"sha256": "1" * 64}


def test_round_trip_of_a_resolved_plan(client: IndexClient, tmp_path: Path) -> None:
    plan = resolve(["requests", "pyjwt[crypto]"], PY312_ARM, client=client, exclude=["cffi"])
    path = write_lock(plan, tmp_path / "pylock.toml")
    assert path == tmp_path / "pylock.toml"
    assert [p.name for p in tmp_path.iterdir()] == ["pylock.toml"]  # no temp file left
    back = read_lock(path, PY312_ARM)
    assert back == plan
    assert back.to_json() == plan.to_json()
    # the same plan twice gives the same bytes
    again = write_lock(resolve(["requests", "pyjwt[crypto]"], PY312_ARM, client=client,
                               exclude=["cffi"]), tmp_path / "again.toml")  # fmt: skip
    assert again.read_bytes() == path.read_bytes()
    text = path.read_text()
    assert 'excluded = [{name = "cffi", required-by = ["cryptography"]}]' in text
    assert "platform_machine == 'aarch64'" in text
    assert 'arch = "arm64"' in text


def test_lock_for_another_target_is_refused(client: IndexClient, tmp_path: Path) -> None:
    path = write_lock(resolve(["six"], PY312_ARM, client=client), tmp_path / "pylock.toml")
    with pytest.raises(LockMismatch) as err:
        read_lock(path, PY312)
    msg = str(err.value)
    assert msg.startswith(f"{path} was made for python3.12 on arm64, not python3.12 on x86_64")
    assert "--runtime python3.12 --arch arm64" in msg
    with pytest.raises(LockMismatch) as err:
        read_lock(path, get_target("python3.13", "arm64"))
    assert "made for python3.12 on arm64, not python3.13 on arm64" in str(err.value)


FOREIGN = """\
lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.11"
created-by = "another-tool"

[[packages]]
name = "demo"
version = "1.0"
wheels = [
  {name = "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", url = "https://files.test/demo-x86.whl", hashes = {sha256 = "AAAA"}},
  {name = "demo-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", url = "https://files.test/demo-arm.whl", hashes = {sha256 = "bbbb"}},
  {name = "demo-1.0-cp312-cp312-win_amd64.whl", url = "https://files.test/demo-win.whl", hashes = {sha256 = "cccc"}},
]
dependencies = [{name = "helper"}]

[[packages]]
name = "helper"
version = "2.0"
marker = "platform_machine == 'aarch64'"
wheels = [{url = "https://files.test/helper-2.0-py3-none-any.whl", hashes = {sha256 = "dddd"}}]
"""  # noqa: E501


def test_foreign_lock_picks_the_target_wheels() -> None:
    x86 = loads_lock(FOREIGN, PY312)
    assert [(p.name, p.file.url, p.file.sha256) for p in x86.packages] == [
        ("demo", "https://files.test/demo-x86.whl", "aaaa")
    ]
    arm = loads_lock(FOREIGN, PY312_ARM)
    assert [(p.name, p.file.filename) for p in arm.packages] == [
        ("demo", "demo-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
        ("helper", "helper-2.0-py3-none-any.whl"),
    ]
    assert arm.packages[0].requires == ("helper",)
    assert arm.packages[1].required_by == ("demo",)
    with pytest.raises(LockMismatch) as err:
        loads_lock(FOREIGN, get_target("python3.10", "x86_64"), where="pylock.toml")
    assert "pylock.toml requires Python >=3.11, but python3.10 on x86_64 runs Python 3.10" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("lock-version = \n", "is not valid TOML"),
        ('lock-version = "2.0"\n', "has lock-version '2.0'"),
        ("created-by = 'x'\n", "has lock-version 'missing'"),
        (
            "lock-version = '1.0'\nenvironments = [\"sys_platform == 'win32'\"]\n",
            "was made for the environments [\"sys_platform == 'win32'\"], none of which is",
        ),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n"
            "sdist = {url = 'https://files.test/a-1.tar.gz'}\n",
            "package 'a' has no wheels in the lock",
        ),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n"
            "wheels = [{name = 'a-1-py3-none-any.whl', url = 'https://files.test/a.whl'}]\n",
            "has no sha256 hash",
        ),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n"
            "wheels = [{name = 'a-1-cp39-cp39-win32.whl', url = 'https://files.test/a.whl',"
            " hashes = {sha256 = 'ee'}}]\n",
            "none of the wheels of a 1 fits python3.12 on x86_64",
        ),
        (
            "lock-version = '1.0'\n[tool.layerbuilder]\nruntime = 'python2.7'\narch = 'x86_64'\n",
            "names an unknown target",
        ),
    ],
)
def test_bad_locks(text: str, reason: str) -> None:
    with pytest.raises(LockMismatch) as err:
        loads_lock(text, PY312, where="pylock.toml")
    assert str(err.value).startswith("pylock.toml")
    assert reason in str(err.value)


def test_unreadable_lock(tmp_path: Path) -> None:
    with pytest.raises(LockMismatch) as err:
        read_lock(tmp_path / "missing.toml", PY312)
    assert "cannot read lock file" in str(err.value) and "missing.toml" in str(err.value)


def test_environment_marker() -> None:
    assert environment_marker(get_target("python3.9", "arm64")) == (
        "sys_platform == 'linux' and platform_machine == 'aarch64' "
        "and implementation_name == 'cpython' and python_version == '3.9'"
    )
