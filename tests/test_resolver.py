"""Resolution: over the recorded fixtures (real projects, real metadata) and over
small in-memory indexes for the cases no real project shows cleanly."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakeindex import FIXTURES, INDEX_URL
from packaging.utils import canonicalize_name

from layerbuilder.errors import (
    IntegrityError,
    InvalidRequirement,
    NoCompatibleWheel,
    ProjectNotFound,
    ResolutionImpossible,
    SdistOnly,
    VersionNotFound,
)
from layerbuilder.index import IndexClient
from layerbuilder.models import DistFile, FileList, ProjectPage, parse_json_api, tag_filter
from layerbuilder.plan import Plan
from layerbuilder.requirements import parse_requirements, parse_requirements_file
from layerbuilder.resolver import resolve
from layerbuilder.targets import Target, get_target

PY39 = get_target("python3.9", "x86_64")
PY310 = get_target("python3.10", "x86_64")
PY312 = get_target("python3.12", "x86_64")
PY312_ARM = get_target("python3.12", "arm64")
PY313 = get_target("python3.13", "x86_64")


@pytest.fixture(params=["parsed", "read-when-asked"])
def client(fake_index: Any, request: Any) -> Iterator[IndexClient]:
    """Each test twice: pages parsed whole, and pages whose versions are read only
    when the resolver asks (every document spooled, as large ones are)."""
    c = IndexClient(INDEX_URL) if request.param == "parsed" else IndexClient(INDEX_URL, spool_at=1)
    yield c
    c.close()


def pins(plan: Plan) -> dict[str, str]:
    return {p.name: p.version for p in plan.packages}


def sha256_of(project: str, filename: str) -> str:
    doc = json.loads((FIXTURES / "index" / f"{project}.json").read_text())
    for files in doc["releases"].values():
        for entry in files:
            if entry["filename"] == filename:
                return str(entry["digests"]["sha256"])
    raise KeyError(filename)


# -- over the recorded fixtures ------------------------------------------------------


def test_requests_closure_with_graph(client: IndexClient) -> None:
    plan = resolve(["requests"], PY312, client=client)
    assert [p.name for p in plan.packages] == [
        "requests",  # what was asked for comes first, then the rest by name
        "certifi",
        "charset-normalizer",
        "idna",
        "urllib3",
    ]
    assert pins(plan) == {
        "requests": "2.34.2",
        "certifi": "2026.10.19.post1",
        "charset-normalizer": "3.5.3",
        "idna": "3.20",
        "urllib3": "2.8.0",
    }
    req = plan.get("requests")
    assert req is not None
    assert req.file.filename == "requests-2.34.2-py3-none-any.whl"
    assert req.requires == ("certifi", "charset-normalizer", "idna", "urllib3")
    assert req.required_by == ()
    urllib3 = plan.get("urllib3")
    assert urllib3 is not None and urllib3.required_by == ("requests",)
    cn = plan.get("charset-normalizer")
    assert cn is not None
    assert cn.file.filename.startswith("charset_normalizer-3.5.3-cp312-cp312-manylinux")
    assert cn.file.filename.endswith("x86_64.whl")
    assert plan.requirements == ("requests",)
    assert plan.target == PY312


def test_markers_differ_between_pythons(client: IndexClient) -> None:
    # anyio 4.9.0: exceptiongroup if python_version < "3.11",
    # typing_extensions if python_version < "3.13"
    base = {"anyio": "4.9.0", "idna": "3.20", "sniffio": "1.3.1"}
    te = {"typing-extensions": "4.16.0"}
    assert pins(resolve(["anyio"], PY39, client=client)) == {
        **base,
        **te,
        "exceptiongroup": "1.3.2",
    }
    assert pins(resolve(["anyio"], PY312, client=client)) == {**base, **te}
    assert pins(resolve(["anyio"], PY313, client=client)) == base
    plan = resolve(["anyio"], PY39, client=client)
    eg = plan.get("exceptiongroup")
    assert eg is not None and eg.required_by == ("anyio",)
    # exceptiongroup itself needs typing-extensions below 3.13
    assert eg.requires == ("typing-extensions",)


def test_markers_differ_between_architectures(client: IndexClient) -> None:
    # xgboost 2.1.4: nvidia-nccl-cu12; platform_system == 'Linux' and platform_machine != 'aarch64'
    x86 = resolve(["xgboost"], PY312, client=client)
    arm = resolve(["xgboost"], PY312_ARM, client=client)
    assert pins(x86) == {
        "xgboost": "2.1.4",
        "numpy": "2.5.5",
        "nvidia-nccl-cu12": "2.32.3",
        "scipy": "1.18.1",
    }
    assert pins(arm) == {"xgboost": "2.1.4", "numpy": "2.5.5", "scipy": "1.18.1"}
    assert x86.packages[0].file.filename == "xgboost-2.1.4-py3-none-manylinux_2_28_x86_64.whl"
    assert arm.packages[0].file.filename == "xgboost-2.1.4-py3-none-manylinux_2_28_aarch64.whl"
    assert {p.file.filename.rsplit("_", 1)[-1] for p in arm.packages} == {"aarch64.whl"}
    numpy = arm.get("numpy")
    assert numpy is not None and numpy.required_by == ("scipy", "xgboost")


def test_extras_are_followed(client: IndexClient) -> None:
    plain = resolve(["pyjwt"], PY312, client=client)
    assert pins(plain) == {"pyjwt": "2.15.1"}
    crypto = resolve(["pyjwt[crypto]"], PY312, client=client)
    assert pins(crypto) == {
        "pyjwt": "2.15.1",
        "cffi": "2.1.1",
        "cryptography": "50.0.2",
        "pycparser": "3.12",
    }
    jwt = crypto.get("pyjwt")
    assert jwt is not None and jwt.requires == ("cryptography",)
    assert crypto.requirements == ("pyjwt[crypto]",)
    # on 3.10 pyjwt also needs typing_extensions, and cryptography's best
    # abi3 wheel for 3.10 is the cp39-abi3 one
    old = resolve(["pyjwt[crypto]>=2.10"], PY310, client=client)
    assert "typing-extensions" in pins(old)
    crypto_old = old.get("cryptography")
    assert crypto_old is not None and "-cp39-abi3-" in crypto_old.file.filename


def test_conflict_needs_backtracking(client: IndexClient) -> None:
    # s3transfer<0.14 is upper-bounded, so it is pinned first (0.13.1), then
    # botocore (upper-bounded by s3transfer) at its newest, 1.44.8.  boto3
    # 1.44.8 wants s3transfer 0.19 and is rejected; boto3 1.40.0 wants botocore
    # 1.40, so the resolver must give up its botocore 1.44.8 pin.
    # (test_backtracks_over_a_pinned_choice shows a full backtrack.)
    plan = resolve(["boto3", "s3transfer<0.14"], PY312, client=client)
    assert pins(plan) == {
        "boto3": "1.40.0",
        "s3transfer": "0.13.1",
        "botocore": "1.40.0",
        "jmespath": "1.1.0",
        "python-dateutil": "2.9.0.post0",
        "six": "1.17.0",
        "urllib3": "2.8.0",
    }
    # the newest of everything when nothing conflicts
    assert pins(resolve(["boto3"], PY312, client=client))["botocore"] == "1.44.8"


def test_unsatisfiable_names_both_sides(client: IndexClient) -> None:
    with pytest.raises(ResolutionImpossible) as err:
        resolve(["requests==2.32.5", "urllib3<1.21.1"], PY312, client=client)
    msg = str(err.value)
    assert "requests 2.32.5 requires urllib3<3,>=1.21.1" in msg
    assert "you pinned urllib3<1.21.1" in msg
    assert "python3.12 on x86_64" in msg


def test_dependency_without_wheel_names_the_path(client: IndexClient) -> None:
    with pytest.raises(SdistOnly) as err:
        resolve(["num2words"], PY312, client=client)
    msg = str(err.value)
    assert msg.startswith("num2words 0.5.14 requires docopt>=0.6.2")
    assert "docopt 0.6.2 has only source distributions" in msg
    assert isinstance(err.value, NoCompatibleWheel)


def test_newest_without_wheel_for_target_falls_back(client: IndexClient) -> None:
    # python3.10 runs on Amazon Linux 2 (glibc 2.26): numpy 2.3.1's wheels need
    # glibc 2.28, newer numpys need Python 3.11+; 2.2.6 (manylinux_2_17) fits.
    plan = resolve(["numpy"], PY310, client=client)
    assert pins(plan) == {"numpy": "2.2.6"}
    assert "manylinux_2_17_x86_64" in plan.packages[0].file.filename
    # and via a dependency: scipy 1.18.1 needs Python 3.12, so none for 3.10
    with pytest.raises(NoCompatibleWheel) as err:
        resolve(["xgboost"], PY310, client=client)
    assert "xgboost 2.1.4 requires scipy" in str(err.value)


def test_exclude_drops_package_and_its_private_deps(client: IndexClient) -> None:
    plan = resolve(["boto3"], PY312, client=client, exclude=["botocore"])
    # botocore's own deps (python-dateutil, six, urllib3) go; jmespath stays,
    # boto3 needs it too
    assert pins(plan) == {"boto3": "1.44.8", "jmespath": "1.1.0", "s3transfer": "0.19.3"}
    assert plan.excluded == (("botocore", ("boto3", "s3transfer")),)
    assert plan.to_json()["excluded"] == [
        {"name": "botocore", "required_by": ["boto3", "s3transfer"]}
    ]
    # spelled any way; excluding a top-level requirement keeps nothing of it
    plan = resolve(["requests", "six"], PY312, client=client, exclude=["Six", "URLLIB3"])
    assert "six" not in pins(plan) and "urllib3" not in pins(plan)
    assert plan.excluded == (("six", ()), ("urllib3", ("requests",)))


def test_exclude_newer(client: IndexClient) -> None:
    cutoff = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    plan = resolve(["requests"], PY312, client=client, exclude_newer=cutoff)
    assert pins(plan) == {
        "requests": "2.32.5",
        "certifi": "2025.8.3",
        "charset-normalizer": "3.4.3",
        "idna": "3.10",
        "urllib3": "2.5.0",
    }
    for p in plan.packages:
        assert p.file.upload_time is not None and p.file.upload_time < cutoff
    # at exactly a file's upload time, that file is already excluded: what is
    # left of requests then is yanked, usable only when pinned
    stamp = plan.get("requests")
    assert stamp is not None and stamp.file.upload_time is not None
    with pytest.raises(VersionNotFound) as err:
        resolve(["requests"], PY312, client=client, exclude_newer=stamp.file.upload_time)
    assert "yanked (requests 2.32.1, 2.32.0)" in str(err.value)
    assert str(err.value).startswith("you asked for requests, and nothing on the index fits")
    old = resolve(["requests==2.32.1"], PY312, client=client, exclude_newer=stamp.file.upload_time)
    assert pins(old)["requests"] == "2.32.1"


def test_no_deps(client: IndexClient) -> None:
    plan = resolve(["requests", "pyjwt[crypto]"], PY312, client=client, no_deps=True)
    assert pins(plan) == {"requests": "2.34.2", "pyjwt": "2.15.1"}
    assert all(p.requires == () and p.required_by == () for p in plan.packages)


def test_pre(client: IndexClient) -> None:
    assert pins(resolve(["numpy<2.5.5"], PY312, client=client)) == {"numpy": "2.4.6"}
    assert pins(resolve(["numpy<2.5.5"], PY312, client=client, pre=True)) == {"numpy": "2.5.0rc1"}


def test_root_markers_use_the_target(client: IndexClient) -> None:
    reqs = ['six; platform_machine == "aarch64"', 'idna; python_version < "3.10"']
    assert pins(resolve(reqs, PY312_ARM, client=client)) == {"six": "1.17.0"}
    assert pins(resolve(reqs, PY39, client=client)) == {"idna": "3.20"}
    plan = resolve(reqs, PY312, client=client)
    assert plan.packages == () and plan.requirements == tuple(reqs)


def test_unknown_project(client: IndexClient) -> None:
    with pytest.raises(ProjectNotFound) as err:
        resolve(["no-such-project"], PY312, client=client)
    assert "no-such-project" in str(err.value)


def test_bad_requirement() -> None:
    with pytest.raises(InvalidRequirement) as err:
        resolve(["requests>>2"], PY312, client=_Memory({}))
    assert "'requests>>2'" in str(err.value)
    with pytest.raises(InvalidRequirement) as err:
        resolve(["demo @ https://files.test/demo-1.0-py3-none-any.whl"], PY312, client=_Memory({}))
    assert "direct URL" in str(err.value)


def test_metadata_comes_from_the_pinned_files_only(client: IndexClient) -> None:
    asked: list[str] = []
    real = client.get_metadata

    def spy(file: DistFile) -> bytes:
        asked.append(file.filename)
        return real(file)

    client.get_metadata = spy  # type: ignore[method-assign]
    plan = resolve(["requests"], PY312, client=client)
    assert sorted(asked) == sorted(p.file.filename for p in plan.packages)


# -- requirements files, hashes and constraints -----------------------------------


def test_requirements_file_with_include_and_hashes(client: IndexClient, tmp_path: Path) -> None:
    good = sha256_of("requests", "requests-2.34.2-py3-none-any.whl")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.txt").write_text(
        f"requests==2.34.2 \\\n    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{good}\n"
    )
    (tmp_path / "main.txt").write_text("# the layer\n-r sub/base.txt\nsix  # pure\n")
    reqs = parse_requirements_file(tmp_path / "main.txt")
    plan = resolve(list(reqs), PY312, client=client)
    assert pins(plan)["requests"] == "2.34.2" and "six" in pins(plan)
    assert plan.requirements == ("requests==2.34.2", "six")
    # a hash that matches no file
    (tmp_path / "sub" / "base.txt").write_text(f"requests==2.34.2 --hash=sha256:{'0' * 64}\n")
    with pytest.raises(IntegrityError) as err:
        resolve(list(parse_requirements_file(tmp_path / "main.txt")), PY312, client=client)
    msg = str(err.value)
    assert f"{tmp_path / 'sub' / 'base.txt'}:1" in msg
    assert "requests-2.34.2-py3-none-any.whl" in msg and good in msg


def test_hash_of_an_older_release_selects_it(client: IndexClient) -> None:
    # like pip: when some file matches the given hashes, only those files count
    old = sha256_of("requests", "requests-2.32.5-py3-none-any.whl")
    reqs = parse_requirements(f"requests --hash=sha256:{old}\n")
    assert pins(resolve(list(reqs), PY312, client=client))["requests"] == "2.32.5"


def test_constraints_narrow_without_adding(client: IndexClient, tmp_path: Path) -> None:
    (tmp_path / "constraints.txt").write_text("urllib3<2.6\nnumpy<2\n")
    (tmp_path / "requirements.txt").write_text("requests\n-c constraints.txt\n")
    reqs = parse_requirements_file(tmp_path / "requirements.txt")
    plan = resolve(list(reqs), PY312, client=client)
    assert pins(plan)["urllib3"] == "2.5.0"
    assert "numpy" not in pins(plan)
    assert plan.requirements == ("requests",)


# -- in-memory indexes -----------------------------------------------------------


class _Memory:
    """An index in memory: {name: {version: [Requires-Dist, ...]}}, one pure wheel each."""

    max_workers = 8

    def __init__(
        self,
        projects: dict[str, dict[str, Sequence[str]]],
        *,
        requires_python: dict[tuple[str, str], str] | None = None,
        raw: dict[tuple[str, str], bytes] | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        self.projects = projects
        self.requires_python = requires_python or {}
        self.raw = raw or {}
        self.barrier = barrier
        self.pages: list[str] = []
        self.metadata: list[str] = []

    def get_project(self, name: str, **_filters: object) -> ProjectPage:
        name = canonicalize_name(name)
        self.pages.append(name)
        if self.barrier is not None and name.startswith("dep"):
            self.barrier.wait()  # every dep's page must be asked for at once
        if name not in self.projects:
            raise ProjectNotFound(f"project {name!r} was not found on the index")
        files = tuple(
            DistFile(
                project=name,
                filename=f"{name.replace('-', '_')}-{v}-py3-none-any.whl",
                url=f"https://files.test/{name}-{v}.whl",
                sha256=f"{abs(hash((name, v))):064x}"[:64],
                has_metadata=True,
            )
            for v in self.projects[name]
        )
        return ProjectPage(name=name, files=files, versions=tuple(self.projects[name]))

    def get_metadata(self, file: DistFile) -> bytes:
        self.metadata.append(file.filename)
        name, version = file.project, str(file.version)
        if (name, version) in self.raw:
            return self.raw[name, version]
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        rp = self.requires_python.get((name, version))
        if rp:
            lines.append(f"Requires-Python: {rp}")
        for dep in self.projects[name][version]:
            if dep.startswith("extra:"):
                lines.append(f"Provides-Extra: {dep[6:]}")
            else:
                lines.append(f"Requires-Dist: {dep}")
        return ("\n".join(lines) + "\n\nlong description\n").encode()

    def close(self) -> None:
        pass


def mem_resolve(index: _Memory, reqs: Sequence[str], target: Target = PY312, **kw: Any) -> Plan:
    return resolve(reqs, target, client=index, **kw)  # type: ignore[arg-type]


def test_backtracks_over_a_pinned_choice() -> None:
    index = _Memory(
        {
            "a": {"1.0": ["b", "c"]},
            "b": {"2.0": ["d>=2"], "1.0": ["d"]},
            "c": {"1.0": ["d<2"]},
            "d": {"2.0": [], "1.0": []},
        }
    )
    assert pins(mem_resolve(index, ["a"])) == {"a": "1.0", "b": "1.0", "c": "1.0", "d": "1.0"}


def test_cycles_and_self_dependencies() -> None:
    index = _Memory(
        {
            "a": {"1.0": ["b", "a"]},
            "b": {"1.0": ["a>=1"]},
            "c": {"1.0": ["extra:x", "extra:y", 'c[y]; extra == "x"', 'd; extra == "y"']},
            "d": {"1.0": []},
        }
    )
    plan = mem_resolve(index, ["a"])
    assert pins(plan) == {"a": "1.0", "b": "1.0"}
    a, b = plan.get("a"), plan.get("b")
    assert a is not None and b is not None
    assert a.requires == ("b",) and a.required_by == ("b",) and b.requires == ("a",)
    # an extra that asks for another extra of its own project
    plan = mem_resolve(index, ["c[x]"])
    assert pins(plan) == {"c": "1.0", "d": "1.0"}
    c = plan.get("c")
    assert c is not None and c.requires == ("d",)


def test_two_extras_share_one_version() -> None:
    index = _Memory(
        {
            "p": {"2.0": ["extra:x", "extra:y", 'q>=2; extra == "x"'], "1.0": ["extra:y"]},
            "q": {"1.0": []},
        }
    )
    # p[x] 2.0 cannot be had (q>=2 does not exist), so p 1.0 — for p[y] too
    assert pins(mem_resolve(index, ["p[y]", "p[x]"])) == {"p": "1.0"}


def test_conflict_message_gives_the_chain() -> None:
    index = _Memory(
        {
            "top": {"1.0": ["mid"]},
            "mid": {"1.0": ["leaf>=2"]},
            "leaf": {"2.0": [], "1.0": []},
        }
    )
    with pytest.raises(ResolutionImpossible) as err:
        mem_resolve(index, ["top", "leaf<2"])
    msg = str(err.value)
    assert "you pinned leaf<2" in msg
    assert "mid 1.0 requires leaf>=2 (via you asked for top -> top 1.0 requires mid)" in msg


def test_missing_dependency_names_the_path() -> None:
    index = _Memory({"top": {"1.0": ["mid"]}, "mid": {"1.0": ["ghost>=1"]}})
    with pytest.raises(ProjectNotFound) as err:
        mem_resolve(index, ["top"])
    assert str(err.value).startswith("mid 1.0 requires ghost>=1 (via you asked for top")
    assert "'ghost' was not found" in str(err.value)


def test_requires_python_from_metadata_is_honoured() -> None:
    # the index says nothing; the metadata of 2.0 excludes 3.12
    index = _Memory(
        {"r": {"2.0": [], "1.0": []}},
        requires_python={("r", "2.0"): ">=3.13"},
    )
    assert pins(mem_resolve(index, ["r"])) == {"r": "1.0"}
    assert pins(mem_resolve(index, ["r"], PY313)) == {"r": "2.0"}


def test_unusable_metadata_skips_the_version() -> None:
    index = _Memory(
        {"u": {"2.0": [], "1.0": []}},
        raw={("u", "2.0"): b"Metadata-Version: 2.1\nName: u\nVersion: 2.0\nRequires-Dist: x>>1\n"},
    )
    assert pins(mem_resolve(index, ["u"])) == {"u": "1.0"}
    index = _Memory(
        {"u": {"2.0": []}},
        raw={("u", "2.0"): b"Metadata-Version: 2.1\nName: other\nVersion: 2.0\n"},
    )
    with pytest.raises(NoCompatibleWheel) as err:
        mem_resolve(index, ["u"])
    assert "u-2.0-py3-none-any.whl has unusable metadata" in str(err.value)
    assert "'other'" in str(err.value)


def test_dependency_pages_are_fetched_together() -> None:
    # the root's five dependencies are asked for at once: each page request
    # waits until all five are in flight, which only a concurrent fetch allows
    deps = [f"dep{i}" for i in range(5)]
    index = _Memory(
        {"root": {"1.0": deps}, **{d: {"1.0": []} for d in deps}},
        barrier=threading.Barrier(5, timeout=30),
    )
    plan = mem_resolve(index, ["root"])
    assert set(pins(plan)) == {"root", *deps}
    assert sorted(index.pages) == sorted(["root", *deps])  # each page once


class _Gated(_Memory):
    """``slow``'s metadata is held back until ``d``'s page has been asked for."""

    def __init__(self, projects: dict[str, dict[str, Sequence[str]]]) -> None:
        super().__init__(projects)
        self.d_asked = threading.Event()
        self.d_before_slow: bool | None = None

    def get_project(self, name: str, **_filters: object) -> ProjectPage:
        if canonicalize_name(name) == "d":
            self.d_asked.set()
        return super().get_project(name)

    def get_metadata(self, file: DistFile) -> bytes:
        if file.project == "slow":
            self.d_before_slow = self.d_asked.wait(timeout=10)
        return super().get_metadata(file)


def test_look_ahead_fetches_down_the_closure_while_the_resolver_waits() -> None:
    # The resolver pins `slow` first and waits for its metadata, which is only
    # served once d's page has been asked for.  d sits three levels down a->b->c->d:
    # only the look-ahead, walking the metadata of likely picks, asks for it then.
    index = _Gated(
        {
            "slow": {"1.0": []},
            "a": {"1.0": ["b"]},
            "b": {"2.0": ["c>=1"], "1.0": []},
            "c": {"1.0": ['d; python_version >= "3.12"', 'never; python_version < "3.0"']},
            "d": {"1.0": []},
        }
    )
    plan = mem_resolve(index, ["slow", "a"])
    assert pins(plan) == {"slow": "1.0", "a": "1.0", "b": "2.0", "c": "1.0", "d": "1.0"}
    assert index.d_before_slow is True
    # markers are the target's in the look-ahead too: `never` is not fetched
    assert sorted(index.pages) == ["a", "b", "c", "d", "slow"]


def test_look_ahead_skips_excluded_projects_and_markers_of_other_targets() -> None:
    index = _Memory(
        {
            "app": {"1.0": ["boto3", 'uvloop; python_version < "3.10"', "lib"]},
            "boto3": {"1.0": ["botocore"]},
            "botocore": {"1.0": []},
            "uvloop": {"1.0": []},
            "lib": {"1.0": []},
        }
    )
    plan = mem_resolve(index, ["app"], exclude=["boto3"])
    assert pins(plan) == {"app": "1.0", "lib": "1.0"}
    assert sorted(index.pages) == ["app", "lib"]
    assert sorted(index.metadata) == ["app-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl"]


def test_a_failed_look_ahead_is_left_to_the_resolver(caplog: pytest.LogCaptureFixture) -> None:
    index = _Memory({"top": {"1.0": ["mid"]}, "mid": {"1.0": ["ghost>=1"]}})
    with caplog.at_level("DEBUG"), pytest.raises(ProjectNotFound) as err:
        mem_resolve(index, ["top"])
    assert str(err.value).startswith("mid 1.0 requires ghost>=1 (via you asked for top")
    # nothing escaped from a worker's callback (concurrent.futures would log it)
    assert [r.getMessage() for r in caplog.records if r.name == "concurrent.futures"] == []


def test_on_pin_reports_each_pinned_wheel_before_the_end() -> None:
    index = _Memory(
        {
            "a": {"1.0": ["b", "c"]},
            "b": {"2.0": ["d>=2"], "1.0": ["d"]},
            "c": {"1.0": ["d<2"]},
            "d": {"2.0": [], "1.0": []},
        }
    )
    pinned: list[str] = []
    plan = mem_resolve(index, ["a"], on_pin=lambda f: pinned.append(f.filename))
    chosen = [p.file.filename for p in plan.packages]
    assert set(chosen) <= set(pinned)
    # backtracking pinned b 2.0 (or d 2.0) first: the calls are not taken back
    assert set(pinned) - set(chosen)
    assert pinned[0] == "a-1.0-py3-none-any.whl"


def test_a_resolution_keeps_nothing_alive_once_it_returns(client: IndexClient) -> None:
    """Its documents, metadata and look-ahead callbacks go as soon as resolve()
    returns (refcounting), not at some later full garbage collection: in a warm
    Lambda one resolution after another would otherwise pile them up."""
    import gc

    from layerbuilder.resolver_fetch import Fetcher
    from layerbuilder.resolver_provider import Provider

    gc.collect()
    gc.disable()
    try:
        plan = resolve(["requests"], PY312, client=client)
        left = [type(o).__name__ for o in gc.get_objects() if isinstance(o, (Fetcher, Provider))]
    finally:
        gc.enable()
    assert pins(plan)["requests"] == "2.34.2"
    assert left == []


def test_a_spooled_page_is_read_no_further_than_the_resolution_needs(fake_index: Any) -> None:
    tags = frozenset(PY312.tag_priority)  # the resolver's filter
    with IndexClient(INDEX_URL, spool_at=1) as client:
        plan = resolve(["requests"], PY312, client=client)
        assert len(plan.packages) == 5  # the pins: test_requests_closure_with_graph
        pages = {name: client.get_project(name, tags=tags) for name in pins(plan)}
    for name, page in pages.items():
        assert isinstance(page.files, FileList)
        # one version each: the newest, whose wheel the plan holds
        assert len(page.versions) - page.files.unread == 1, name
        assert len(page.versions) > 1, name
        # reading the rest gives what parsing the document whole gives
        data = (FIXTURES / "index" / f"{name}.json").read_bytes()
        whole = parse_json_api(data, f"{INDEX_URL}/{name}/json", tag_filter(tags))
        assert tuple(page.files) == tuple(whole.files), name
        assert page.files.unread == 0
