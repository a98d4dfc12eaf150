"""Build small synthetic wheels for tests, including broken and hostile ones.

``make_wheel(dir, "demo", "1.0", [Member("demo/__init__.py", b"x = 1\\n"), ...])``
writes ``demo-1.0-py3-none-any.whl`` with the members given plus a
``.dist-info`` (METADATA, WHEEL, RECORD with real hashes).  Members control the
compression, the unix mode and file type, and a few zip-level oddities (data
descriptors, a local zip64 extra, patched flags and local names).
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Member", "make_wheel", "patch_flags", "patch_local_name", "raw_member_bytes"]


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = b""
    compress: int = zipfile.ZIP_DEFLATED
    mode: int = 0o644  # permission bits
    file_type: int = stat.S_IFREG
    force_zip64: bool = False  # zipfile then writes a zip64 extra in the local header only
    date_time: tuple[int, int, int, int, int, int] = (2021, 6, 1, 12, 30, 0)


class _Unseekable(io.RawIOBase):
    """A sink with no tell()/seek(): zipfile then writes data descriptors."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self.buf.write(b)

    def tell(self) -> int:
        raise OSError("unseekable")

    def seekable(self) -> bool:
        return False


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path,
    name: str = "demo",
    version: str = "1.0",
    members: Iterable[Member] = (),
    *,
    tag: str = "py3-none-any",
    dist_info: bool = True,
    streaming: bool = False,
    filename: str | None = None,
) -> Path:
    """Write a wheel into *directory* and return its path."""
    members = list(members)
    if dist_info:
        di = f"{name}-{version}.dist-info"
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        wheel = (
            f"Wheel-Version: 1.0\nGenerator: wheelfactory\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode()
        members += [Member(f"{di}/METADATA", meta), Member(f"{di}/WHEEL", wheel)]
        record = [_record_line(m.name, m.data) for m in members] + [f"{di}/RECORD,,"]
        members.append(Member(f"{di}/RECORD", ("\n".join(record) + "\n").encode()))

    sink: _Unseekable | io.BytesIO = _Unseekable() if streaming else io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are deliberate in some tests
        with zipfile.ZipFile(sink, "w") as zf:  # type: ignore[arg-type]
            for m in members:
                info = zipfile.ZipInfo("placeholder", date_time=m.date_time)
                info.filename = m.name  # set after __init__, which would cut at NUL
                info.orig_filename = m.name
                info.compress_type = m.compress
                info.create_system = 3
                info.external_attr = (m.file_type | m.mode) << 16
                if m.name.endswith("/"):
                    info.external_attr |= 0x10  # MS-DOS directory bit
                with zf.open(info, "w", force_zip64=m.force_zip64) as w:
                    w.write(m.data)
    data = sink.buf.getvalue() if isinstance(sink, _Unseekable) else sink.getvalue()
    path = Path(directory) / (filename or f"{name}-{version}-{tag}.whl")
    path.write_bytes(data)
    return path


def _central_records(data: bytes) -> Iterable[tuple[int, bytes]]:
    """(offset, name) of each central directory record."""
    end = data.rindex(b"PK\x05\x06")
    count, _size, start = struct.unpack("<HLL", data[end + 10 : end + 20])
    pos = start
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        n, e, c = struct.unpack("<HHH", data[pos + 28 : pos + 34])
        yield pos, data[pos + 46 : pos + 46 + n]
        pos += 46 + n + e + c


def _local_offset(data: bytes, member: str) -> int:
    for pos, name in _central_records(data):
        if name == member.encode():
            return int(struct.unpack("<L", data[pos + 42 : pos + 46])[0])
    raise KeyError(member)


def patch_flags(path: Path, flags: Mapping[str, int]) -> None:
    """OR *flags* into the general purpose flags of the named members (both headers)."""
    data = bytearray(path.read_bytes())
    for member, bits in flags.items():
        local = _local_offset(bytes(data), member)
        for pos, name in _central_records(bytes(data)):
            if name == member.encode():
                struct.pack_into(
                    "<H", data, pos + 8, struct.unpack_from("<H", data, pos + 8)[0] | bits
                )
        struct.pack_into("<H", data, local + 6, struct.unpack_from("<H", data, local + 6)[0] | bits)
    path.write_bytes(bytes(data))


def patch_local_name(path: Path, member: str, new_name: str) -> None:
    """Rename *member* in its local header only (same length)."""
    assert len(new_name.encode()) == len(member.encode())
    data = bytearray(path.read_bytes())
    local = _local_offset(bytes(data), member)
    data[local + 30 : local + 30 + len(member.encode())] = new_name.encode()
    path.write_bytes(bytes(data))


def raw_member_bytes(path: Path, member: str) -> bytes:
    """The compressed bytes of *member* as stored in the zip at *path*."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    with path.open("rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        n, e = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + n + e)
        return f.read(info.compress_size)
