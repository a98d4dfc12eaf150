"""Verified streaming download of index files, and the disk/limit check before it.

A file is streamed into a temp file next to its final place while its sha256
and length are computed; it is renamed into place only once both match what
the index declared.  On any failure the partial file is removed, so a name in
the download directory always means a verified file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import requests

from .errors import IndexUnavailable, IntegrityError, LayerTooLarge, UnsafeWheel, WorkspaceTooSmall
from .limits import MAX_UNZIPPED, mb
from .models import DistFile
from .progress import Progress

__all__ = ["CHUNK_SIZE", "ZIP_HEADROOM", "DownloadStopped", "check_room", "download"]

CHUNK_SIZE = 256 * 1024
#: Room needed per byte of wheels: the wheels themselves, plus a layer zip of
#: about the same size (entries are copied compressed as they are).
ZIP_HEADROOM = 2
_BIGGEST_SHOWN = 5


class DownloadStopped(Exception):
    """A transfer ended because its *stop* event was set (the build no longer
    needs it); never shown to a user."""


def download(
    session: requests.Session,
    file: DistFile,
    dest_dir: Path,
    *,
    progress: Progress | None = None,
    timeout: float = 60.0,
    stop: threading.Event | None = None,
) -> Path:
    """Download *file* into *dest_dir* and return its path.

    The sha256 and size the index declared are checked while streaming;
    :class:`IntegrityError` if either differs (and nothing is left behind).
    HTTP and connection failures raise :class:`IndexUnavailable`.  A file
    already in *dest_dir* whose sha256 matches is reused without downloading.
    Once *stop* is set the transfer ends at the next chunk (``DownloadStopped``,
    nothing left behind).
    """
    name = _safe_filename(file)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / name
    if file.sha256 and final.is_file() and _sha256_of(final) == file.sha256.lower():
        if progress is not None:
            progress.advance(final.stat().st_size)
        return final

    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.part-", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, got = _stream(session, file, out, progress, timeout, stop)
        _check(file, digest, got)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _stream(
    session: requests.Session,
    file: DistFile,
    out: BinaryIO,
    progress: Progress | None,
    timeout: float,
    stop: threading.Event | None = None,
) -> tuple[str, int]:
    h = hashlib.sha256()
    got = 0
    try:
        with session.get(file.url, stream=True, timeout=timeout) as resp:
            if resp.status_code >= 400:
                raise IndexUnavailable(
                    f"downloading {file.url} failed: HTTP {resp.status_code}"
                    f"{' ' + resp.reason if resp.reason else ''}; "
                    "the index or its file host may be down, retry later"
                )
            for chunk in resp.iter_content(CHUNK_SIZE):
                if stop is not None and stop.is_set():
                    raise DownloadStopped(f"the download of {file.url} was stopped")
                if not chunk:
                    continue
                h.update(chunk)
                out.write(chunk)
                got += len(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
                if file.size is not None and got > file.size:
                    break  # no point streaming further: the size check fails
    except requests.RequestException as exc:
        raise IndexUnavailable(
            f"downloading {file.url} failed: {exc}; check the network and retry"
        ) from exc
    return h.hexdigest(), got


def _check(file: DistFile, digest: str, got: int) -> None:
    hint = (
        "the file may have been tampered with or corrupted in transit; "
        "retry, and if it persists report it to the index"
    )
    if file.size is not None and got != file.size:
        shown = f"more than {file.size}" if got > file.size else str(got)
        raise IntegrityError(
            f"{file.filename}: expected {file.size} bytes, got {shown} bytes; {hint}"
        )
    if file.sha256 and digest != file.sha256.lower():
        raise IntegrityError(
            f"{file.filename}: expected sha256 {file.sha256.lower()}, got {digest}; {hint}"
        )


def _safe_filename(file: DistFile) -> str:
    name = file.filename
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UnsafeWheel(
            f"the index lists a file named {name!r} for {file.project}, which is not a "
            "plain file name; refusing to write it. Report it to the index."
        )
    return name


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def check_room(files: Sequence[DistFile], work_dir: Path, *, free_bytes: int | None = None) -> None:
    """Fail early when *files* cannot make a layer, or cannot fit in *work_dir*.

    Uses the sizes the index declared (files without one count as 0):

    * :class:`LayerTooLarge` if the wheels alone pass Lambda's unzipped limit
      (wheels are compressed, so the unzipped layer can only be larger);
    * :class:`WorkspaceTooSmall` if *work_dir* has less free space than about
      twice their size (the wheels plus the layer zip).

    *free_bytes* overrides the free space measured on *work_dir*.
    """
    declared = sum(f.size or 0 for f in files)
    if declared > MAX_UNZIPPED:
        biggest = sorted(files, key=lambda f: (-(f.size or 0), f.filename))[:_BIGGEST_SHOWN]
        listing = ", ".join(f"{f.project} ({mb(f.size or 0)})" for f in biggest)
        raise LayerTooLarge(
            f"the wheels alone are {mb(declared)}, over Lambda's {mb(MAX_UNZIPPED)} limit "
            f"on a layer's unzipped size, and they only grow when unzipped. Biggest: "
            f"{listing}. Leave some out with --exclude NAME (e.g. ones the runtime "
            "already provides, like boto3) or split them across layers."
        )
    need = declared * ZIP_HEADROOM
    if free_bytes is None:
        free_bytes = shutil.disk_usage(_existing(Path(work_dir))).free
    if need > free_bytes:
        raise WorkspaceTooSmall(
            f"the work directory {str(work_dir)!r} has {mb(free_bytes)} free but this "
            f"layer needs about {mb(need)} ({mb(declared)} of wheels plus the layer zip). "
            "Give it a larger /tmp (EphemeralStorage, up to 10240 MB on Lambda) or point "
            "--work-dir at a bigger disk."
        )


def _existing(path: Path) -> Path:
    """*path*, or its nearest ancestor that exists (the work dir may not yet)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
