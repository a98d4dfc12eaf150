"""Bodies past a size wait on disk (layerbuilder.spool) and come back byte for byte."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable

import pytest

from layerbuilder.spool import CHUNK, Spooled, SpoolFile, read_spooled

BODY = bytes(range(256)) * 40  # 10,240 bytes


def _reader(data: bytes, piece: int = 700, fail_at: int | None = None) -> Callable[[int], bytes]:
    """``read(n)`` over *data* in pieces of at most *piece* bytes; raises
    ``ConnectionResetError`` once *fail_at* bytes have been given."""
    stream = io.BytesIO(data)

    def read(n: int) -> bytes:
        assert n == CHUNK
        if fail_at is not None and stream.tell() >= fail_at:
            raise ConnectionResetError("connection reset by peer")
        return stream.read(min(n, piece))

    return read


class _Files:
    """A spool-file factory that records the files it made and whether they were
    closed; *fail_after* makes writes fail once that many bytes are written."""

    def __init__(self, fail_after: int | None = None, refuse: bool = False) -> None:
        self.made: list[_File] = []
        self.fail_after = fail_after
        self.refuse = refuse

    def __call__(self) -> SpoolFile:
        if self.refuse:
            raise OSError(28, "No space left on device")
        file = _File(self.fail_after)
        self.made.append(file)
        return file


class _File:
    def __init__(self, fail_after: int | None) -> None:
        self.raw = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (closed by close())
        self.fail_after = fail_after
        self.written = 0
        self.closed = False

    def write(self, data: bytes | memoryview, /) -> int | None:
        if self.fail_after is not None and self.written + len(data) > self.fail_after:
            room = self.fail_after - self.written
            if room <= 0:
                raise OSError(28, "No space left on device")
            data = data[:room]  # a short write first, as a full disk gives
        n = self.raw.write(data) or 0
        self.written += n
        return n

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.closed = True
        self.raw.close()


def test_a_small_body_stays_in_memory_and_makes_no_file() -> None:
    files = _Files()
    body = read_spooled(_reader(BODY), spool_at=len(BODY), open_file=files)
    assert body == BODY and isinstance(body, bytes)
    assert files.made == []


def test_a_large_body_is_spooled_and_read_back_whole() -> None:
    files = _Files()
    body = read_spooled(_reader(BODY), spool_at=1000, open_file=files)
    assert isinstance(body, Spooled)
    assert len(body) == body.size == len(BODY)
    data = body.read()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(BODY).hexdigest()
    (file,) = files.made
    assert file.written == len(BODY) and not file.closed
    body.close()
    assert file.closed


def test_the_default_file_is_a_temporary_one() -> None:
    body = read_spooled(_reader(BODY), spool_at=1000)
    assert isinstance(body, Spooled) and body.read() == BODY
    body.close()


def test_a_body_the_disk_refuses_is_kept_in_memory() -> None:
    body = read_spooled(_reader(BODY), spool_at=1000, open_file=_Files(refuse=True))
    assert body == BODY


@pytest.mark.parametrize("fail_after", [0, 1500, 5000])
def test_a_full_disk_part_way_keeps_the_whole_body_in_memory(fail_after: int) -> None:
    files = _Files(fail_after=fail_after)
    body = read_spooled(_reader(BODY), spool_at=1000, open_file=files)
    assert body == BODY
    (file,) = files.made
    assert file.closed


def test_a_read_error_after_spooling_began_closes_the_file() -> None:
    files = _Files()
    with pytest.raises(ConnectionResetError, match="reset by peer"):
        read_spooled(_reader(BODY, fail_at=4200), spool_at=1000, open_file=files)
    (file,) = files.made
    assert file.closed and file.written == 4200


def test_a_spooled_body_cut_short_on_disk_says_so() -> None:
    files = _Files()
    body = read_spooled(_reader(BODY), spool_at=1000, open_file=files)
    assert isinstance(body, Spooled)
    files.made[0].raw.truncate(5000)
    with pytest.raises(OSError, match=f"gave 5000 of {len(BODY)} bytes"):
        body.read()
    body.close()


def test_a_spooled_body_comes_back_in_pieces_and_cut_short_says_so() -> None:
    files = _Files()
    body = read_spooled(_reader(BODY), spool_at=1000, open_file=files)
    assert isinstance(body, Spooled)
    pieces = list(body.pieces(3000))
    assert b"".join(pieces) == BODY and [len(p) for p in pieces[:-1]] == [3000] * (len(pieces) - 1)
    files.made[0].raw.truncate(5000)
    with pytest.raises(OSError, match=f"gave 5000 of {len(BODY)} bytes"):
        list(body.pieces(3000))
    body.close()
