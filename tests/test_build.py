"""build_layer end to end over the recorded index: resolve, download, re-root, verify."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import msgspec.structs
import pytest
from fakeindex import INDEX_URL

from layerbuilder.build import build_layer, license_from_metadata
from layerbuilder.errors import IntegrityError, LayerTooLarge, LockMismatch
from layerbuilder.index import IndexClient
from layerbuilder.lock import read_lock, write_lock
from layerbuilder.plan import Plan
from layerbuilder.resolver import resolve
from layerbuilder.targets import get_target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REQUESTS_STACK = {"certifi", "charset-normalizer", "idna", "requests", "urllib3"}


def _fixture_file(url: str) -> Path:
    return FIXTURES / "files" / url.split("://", 1)[1].split("/", 1)[1]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_requests_layer_has_the_closure_under_site_packages(
    fake_index: Any, tmp_path: Path
) -> None:
    result = build_layer(
        ["requests"], "python3.12", "x86_64", tmp_path / "layer.zip", index_url=INDEX_URL
    )
    assert result.layer_name == "requests_2342_py312"
    assert {p.name for p in result.wheels} == REQUESTS_STACK
    assert result.path == (tmp_path / "layer.zip").absolute()
    data = result.path.read_bytes()
    assert result.zip_size == len(data)
    assert result.zip_sha256 == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(result.path) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert all(n.startswith("python/lib/python3.12/site-packages/") for n in names)
        assert "python/lib/python3.12/site-packages/requests/__init__.py" in names
        assert result.unzipped_size == sum(i.file_size for i in zf.infolist())
    # each wheel used is the recorded file, byte for byte
    for p in result.wheels:
        assert p.file.sha256 == _sha256(_fixture_file(p.file.url))
    assert result.license_info == "Apache-2.0"
    assert result.to_json()["packages"][0]["sha256"] == result.wheels[0].file.sha256


def test_a_build_lets_go_of_the_pages_it_resolved_from(fake_index: Any, tmp_path: Path) -> None:
    client = IndexClient(INDEX_URL)
    result = build_layer(["requests"], output=tmp_path / "a.zip", client=client)
    url = client.project_url("requests")
    assert [c.request.url for c in fake_index.calls].count(url) == 1
    client.get_project("requests", tags=frozenset(result.target.tag_priority))  # as resolved
    assert [c.request.url for c in fake_index.calls].count(url) == 2  # not kept: asked again


def test_building_twice_gives_byte_identical_zips(fake_index: Any, tmp_path: Path) -> None:
    a = build_layer(["requests"], output=tmp_path / "a.zip", index_url=INDEX_URL)
    b = build_layer(["requests"], output=tmp_path / "b.zip", index_url=INDEX_URL)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.content_hash == b.content_hash


def test_lock_round_trip_builds_the_same_bytes(fake_index: Any, tmp_path: Path) -> None:
    target = get_target("python3.12", "arm64")
    plan = resolve(["requests"], target, index_url=INDEX_URL)
    lock = write_lock(plan, tmp_path / "pylock.toml")
    locked = read_lock(lock, target)
    direct = build_layer(plan, output=tmp_path / "direct.zip", index_url=INDEX_URL)
    from_lock = build_layer(locked, output=tmp_path / "locked.zip", index_url=INDEX_URL)
    assert direct.path.read_bytes() == from_lock.path.read_bytes()
    assert direct.layer_name == "requests_2342_py312_arm64"
    with pytest.raises(LockMismatch, match=r"python3\.12 on arm64"):
        build_layer(locked, "python3.11", output=tmp_path / "x.zip", index_url=INDEX_URL)


def test_sha256_mismatch_leaves_no_zip_and_no_download(fake_index: Any, tmp_path: Path) -> None:
    plan = resolve(["six"], get_target("python3.12", "x86_64"), index_url=INDEX_URL)
    bad = msgspec.structs.replace(plan.packages[0].file, sha256="0" * 64)
    tampered = Plan(plan.target, (msgspec.structs.replace(plan.packages[0], file=bad),))
    out, work = tmp_path / "six.zip", tmp_path / "work"
    with pytest.raises(IntegrityError, match=r"six-1\.17\.0-py2\.py3-none-any\.whl"):
        build_layer(tampered, output=out, work_dir=work, index_url=INDEX_URL)
    assert not out.exists()
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_declared_sizes_over_lambdas_limit_refuse_before_downloading(
    fake_index: Any, tmp_path: Path
) -> None:
    plan = resolve(["requests"], get_target("python3.12", "x86_64"), index_url=INDEX_URL)
    huge = tuple(
        msgspec.structs.replace(p, file=msgspec.structs.replace(p.file, size=300_000_000))
        if p.name == "urllib3"
        else p
        for p in plan.packages
    )
    with pytest.raises(LayerTooLarge) as err:
        build_layer(Plan(plan.target, huge), output=tmp_path / "x.zip", index_url=INDEX_URL)
    assert "urllib3" in str(err.value)
    assert "--exclude" in str(err.value)
    assert not any(c.request.url.endswith(".whl") for c in fake_index.calls)
    assert not (tmp_path / "x.zip").exists()


def _python(version: str) -> str | None:
    found = sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else None


@pytest.mark.parametrize(("runtime", "arch"), [("python3.11", "x86_64"), ("python3.12", "x86_64")])
def test_compiled_layer_imports_in_a_clean_interpreter(
    fake_index: Any, tmp_path: Path, runtime: str, arch: str
) -> None:
    """The layer, unpacked as Lambda does, imports its C extension in an isolated CPython."""
    python = _python(runtime[len("python") :])
    if python is None:
        pytest.skip(f"no {runtime} interpreter on this machine")
    result = build_layer(["markupsafe"], runtime, arch, tmp_path / "l.zip", index_url=INDEX_URL)
    opt = tmp_path / "opt"
    with zipfile.ZipFile(result.path) as zf:
        zf.extractall(opt)
    site = opt / result.target.site_packages
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import markupsafe, markupsafe._speedups as s;"
        "print(markupsafe.escape('<a href=\"x\">'), s.__file__.startswith(sys.argv[1]))"
    )
    out = subprocess.run(
        [python, "-I", "-c", code, str(site)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["&lt;a", "href=&#34;x&#34;&gt;", "True"]


def test_license_from_metadata_prefers_expression_then_license_then_classifier() -> None:
    assert license_from_metadata(b"License-Expression: MIT\nLicense: BSD\n\n") == "MIT"
    assert license_from_metadata(b"License: BSD   3\n\n") == "BSD 3"
    classifier = b"Classifier: License :: OSI Approved :: Apache Software License\n\n"
    assert license_from_metadata(classifier) == "Apache Software License"
    assert license_from_metadata(b"Name: x\n\n") is None
    assert len(license_from_metadata(b"License: " + b"x" * 900 + b"\n\n") or "") == 512


def test_package_is_importable_without_boto3() -> None:
    code = "import layerbuilder, layerbuilder.build, sys; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_long_stages_are_announced_only_when_asked_or_on_a_terminal(
    fake_index: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_layer(["six"], output=tmp_path / "quiet.zip", index_url=INDEX_URL)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    build_layer(["six"], output=tmp_path / "loud.zip", index_url=INDEX_URL, progress=True)
    err = capsys.readouterr().err
    assert "writing loud.zip (1 wheel(s))\n" in err
    assert "verifying loud.zip for python3.12 on x86_64\n" in err
    assert "downloading 1 wheel(s)" in err


def test_downloads_start_while_the_resolution_goes_on(fake_index: Any, tmp_path: Path) -> None:
    result = build_layer(
        ["requests"], "python3.12", "x86_64", tmp_path / "layer.zip", index_url=INDEX_URL
    )
    urls = [c.request.url for c in fake_index.calls]
    wheels = [i for i, u in enumerate(urls) if u.endswith(".whl")]
    index_asks = [i for i, u in enumerate(urls) if u.endswith((".metadata", "/json"))]
    # a wheel was asked for before the resolver's last question to the index
    assert wheels and min(wheels) < max(index_asks)
    # each wheel of the layer exactly once
    got = sorted(u.rsplit("/", 1)[1] for u in urls if u.endswith(".whl"))
    assert got == sorted(p.file.filename for p in result.wheels)


def test_a_failed_resolution_stops_its_downloads_and_leaves_nothing(
    fake_index: Any, tmp_path: Path
) -> None:
    import threading

    from layerbuilder.errors import VersionNotFound

    before = set(threading.enumerate())
    out, work = tmp_path / "x.zip", tmp_path / "work"
    # the look-ahead may have started requests' wheel by the time urllib3<1 fails
    with pytest.raises(VersionNotFound, match=r"you pinned urllib3<1"):
        build_layer(["requests", "urllib3<1"], output=out, work_dir=work, index_url=INDEX_URL)
    assert not out.exists()
    assert list(work.iterdir()) == []
    assert set(threading.enumerate()) <= before  # no download or scan thread left
