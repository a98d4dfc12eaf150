from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
import requests
import responses

from layerbuilder.download import check_room, download
from layerbuilder.errors import (
    IndexUnavailable,
    IntegrityError,
    LayerTooLarge,
    UnsafeWheel,
    WorkspaceTooSmall,
)
from layerbuilder.limits import MAX_UNZIPPED
from layerbuilder.models import DistFile
from layerbuilder.progress import Progress

BODY = bytes(range(256)) * 4000  # ~1 MB: several chunks
SHA = hashlib.sha256(BODY).hexdigest()
URL = "https://files.test/packages/ab/cd/demo-1.0-py3-none-any.whl"


def dist(
    *,
    sha256: str | None = SHA,
    size: int | None = len(BODY),
    filename: str = "demo-1.0-py3-none-any.whl",
    project: str = "demo",
) -> DistFile:
    return DistFile(project=project, filename=filename, url=URL, sha256=sha256, size=size)  # type: ignore[arg-type]


@pytest.fixture
def rsps() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_success_writes_verified_file(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(URL, body=BODY)
    path = download(requests.Session(), dist(), tmp_path / "dl")
    assert path == tmp_path / "dl" / "demo-1.0-py3-none-any.whl"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert os.listdir(tmp_path / "dl") == ["demo-1.0-py3-none-any.whl"]


def test_uppercase_declared_digest_accepted(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(URL, body=BODY)
    path = download(requests.Session(), dist(sha256=SHA.upper()), tmp_path)
    assert path.read_bytes() == BODY


def test_sha_mismatch_raises_and_leaves_nothing(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    tampered = BODY[:-1] + b"X"
    rsps.get(URL, body=tampered)
    with pytest.raises(IntegrityError) as info:
        download(requests.Session(), dist(), tmp_path)
    message = str(info.value)
    assert "demo-1.0-py3-none-any.whl" in message
    assert SHA in message
    assert hashlib.sha256(tampered).hexdigest() in message
    assert "tampered" in message and "retry" in message
    assert os.listdir(tmp_path) == []


def test_size_mismatch_short(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(URL, body=BODY[:1000])
    with pytest.raises(IntegrityError) as info:
        download(requests.Session(), dist(), tmp_path)
    assert f"expected {len(BODY)} bytes, got 1000 bytes" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_size_mismatch_long_stops_early(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(URL, body=BODY)
    with pytest.raises(IntegrityError) as info:
        download(requests.Session(), dist(size=10), tmp_path)
    assert "expected 10 bytes, got more than 10 bytes" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_no_declared_hash_or_size_still_downloads(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(URL, body=BODY)
    path = download(requests.Session(), dist(sha256=None, size=None), tmp_path)
    assert path.read_bytes() == BODY


@pytest.mark.parametrize("status", [500, 403, 404])
def test_http_error_is_index_unavailable(
    rsps: responses.RequestsMock, tmp_path: Path, status: int
) -> None:
    rsps.get(URL, status=status, body=b"nope")
    with pytest.raises(IndexUnavailable) as info:
        download(requests.Session(), dist(), tmp_path)
    assert URL in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_connection_error_is_index_unavailable(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(URL, body=requests.ConnectionError("connection reset"))
    with pytest.raises(IndexUnavailable) as info:
        download(requests.Session(), dist(), tmp_path)
    assert URL in str(info.value) and "connection reset" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_error_mid_stream_removes_partial(
    rsps: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rsps.get(URL, body=BODY)
    seen: list[int] = []

    class Boom(Progress):
        def advance(self, n: int) -> None:
            seen.append(n)
            if len(seen) == 2:
                # the partial file exists while streaming ...
                parts = os.listdir(tmp_path)
                assert len(parts) == 1
                assert parts[0].startswith(".demo-1.0-py3-none-any.whl.part-")
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(requests.Session(), dist(), tmp_path, progress=Boom(len(BODY), "x"))
    assert os.listdir(tmp_path) == []  # ... and is gone after the error


def test_existing_verified_file_is_reused(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    (tmp_path / "demo-1.0-py3-none-any.whl").write_bytes(BODY)
    path = download(requests.Session(), dist(), tmp_path)  # no URL registered
    assert path.read_bytes() == BODY
    assert len(rsps.calls) == 0


def test_existing_corrupt_file_is_replaced(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    (tmp_path / "demo-1.0-py3-none-any.whl").write_bytes(b"junk")
    rsps.get(URL, body=BODY)
    path = download(requests.Session(), dist(), tmp_path)
    assert path.read_bytes() == BODY
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("name", ["../evil.whl", "a/b.whl", "..", "a\\b.whl"])
def test_unsafe_filename_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeWheel) as info:
        download(requests.Session(), dist(filename=name), tmp_path / "dl")
    assert repr(name) in str(info.value)
    assert not (tmp_path / "evil.whl").exists()


def test_progress_counts_bytes_and_is_quiet_without_tty(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(URL, body=BODY)
    stream = io.StringIO()
    progress = Progress(len(BODY), "downloading", stream=stream)
    assert progress.enabled is False
    download(requests.Session(), dist(), tmp_path, progress=progress)
    progress.close()
    assert progress.done == len(BODY)
    assert stream.getvalue() == ""


def test_progress_draws_on_a_tty() -> None:
    stream = TTY()
    progress = Progress(2 * 1024 * 1024, "downloading", stream=stream, interval=0)
    progress.advance(1024 * 1024)
    progress.advance(1024 * 1024)
    progress.close()
    progress.close()  # idempotent
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "downloading  1.0/2.0 MB   50%" in text
    assert "downloading  2.0/2.0 MB  100%" in text
    assert text.count("\n") == 1


def test_progress_rate_limited() -> None:
    stream = TTY()
    progress = Progress(100, "x", stream=stream, interval=3600)
    for _ in range(100):
        progress.advance(1)
    assert stream.getvalue().count("\r") == 1  # the first draw only
    progress.close()
    assert stream.getvalue().count("\r") == 2


def test_progress_threads_count_exactly() -> None:
    import threading

    progress = Progress(0, "x", stream=TTY(), interval=0)
    threads = [
        threading.Thread(target=lambda: [progress.advance(3) for _ in range(1000)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert progress.done == 8 * 3000


# -- check_room ------------------------------------------------------------------------


def sized(name: str, size: int | None) -> DistFile:
    return dist(filename=f"{name}-1.0-py3-none-any.whl", project=name, size=size)


def test_check_room_ok(tmp_path: Path) -> None:
    files = [sized("a", 10_000_000), sized("b", 5_000_000), sized("c", None)]
    check_room(files, tmp_path, free_bytes=30_000_000)
    check_room(files, tmp_path / "not" / "yet")  # measures the nearest existing parent


def test_check_room_workspace_too_small(tmp_path: Path) -> None:
    files = [sized("a", 10 * 1024 * 1024), sized("b", 5 * 1024 * 1024)]
    with pytest.raises(WorkspaceTooSmall) as info:
        check_room(files, tmp_path, free_bytes=20 * 1024 * 1024)
    message = str(info.value)
    assert "20.0 MB free" in message
    assert "needs about 30.0 MB" in message
    assert "15.0 MB of wheels" in message
    assert "EphemeralStorage" in message and "--work-dir" in message
    assert str(tmp_path) in message


def test_check_room_over_lambda_limit_lists_biggest(tmp_path: Path) -> None:
    files = [sized(f"p{i}", 1_000_000 * i) for i in range(1, 10)]
    files.append(sized("huge", MAX_UNZIPPED))
    with pytest.raises(LayerTooLarge) as info:
        check_room(files, tmp_path, free_bytes=10**15)
    assert not isinstance(info.value, WorkspaceTooSmall)
    message = str(info.value)
    assert "250.0 MB" in message and "--exclude" in message
    assert message.index("huge (250.0 MB)") < message.index("p9 (") < message.index("p8 (")
    assert "p4 (" not in message  # only the five biggest


def test_check_room_exactly_at_limit_is_fine(tmp_path: Path) -> None:
    check_room([sized("x", MAX_UNZIPPED)], tmp_path, free_bytes=2 * MAX_UNZIPPED)


def test_a_stopped_download_ends_at_the_next_chunk_and_leaves_nothing(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    import threading

    from layerbuilder.download import DownloadStopped

    rsps.get(URL, body=BODY)
    stop = threading.Event()
    progress = Progress(len(BODY), "dl", enabled=False)

    class Stopper(Progress):
        def advance(self, n: int) -> None:
            progress.advance(n)
            stop.set()  # asked to stop after the first chunk

    with pytest.raises(DownloadStopped, match=r"demo-1\.0-py3-none-any\.whl was stopped"):
        download(
            requests.Session(),
            dist(),
            tmp_path / "dl",
            progress=Stopper(len(BODY), "x", enabled=False),
            stop=stop,
        )
    assert progress.done == 256 * 1024  # one chunk, not the whole body
    assert os.listdir(tmp_path / "dl") == []
