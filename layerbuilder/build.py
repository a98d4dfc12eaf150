"""Build a layer: plan -> verified downloads -> re-rooted deterministic zip.

This is the core the CLI and the Lambda handler both sit on.  It owns the
order of the stages and the clean-up; each stage lives in its own module.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .download import ZIP_HEADROOM, check_room, download
from .errors import LayerTooLarge, LockMismatch
from .index import IndexClient
from .layerzip import LayerReport, PreparedWheel, prepare_wheel, wheel_metadata, write_layer
from .limits import MAX_LICENSE, MAX_UNZIPPED
from .memory import give_back_free_memory
from .models import DistFile, parse_timestamp
from .naming import default_layer_name, validate_layer_name
from .plan import Plan, PlannedWheel
from .progress import Progress
from .targets import Target, get_target

if TYPE_CHECKING:
    from .elfscan import WheelScans

__all__ = ["BuildResult", "build_layer", "license_from_metadata"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    path: Path
    layer_name: str
    target: Target
    plan: Plan
    zip_size: int
    unzipped_size: int
    zip_sha256: str
    dropped: tuple[str, ...] = ()
    collisions: tuple[str, ...] = ()
    license_info: str | None = None
    #: seconds per stage: "resolve" (unless given a plan), "download", "zip" and
    #: "verify".  verify reads the ELF members of each wheel as it is downloaded,
    #: alongside the download and zip stages; "verify" is what is left after them
    #: (waiting for the last of those reads, then the checks on the zip)
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def content_hash(self) -> str:
        return self.plan.content_hash

    @property
    def wheels(self) -> tuple[PlannedWheel, ...]:
        return self.plan.packages

    def to_json(self) -> dict[str, Any]:
        return {
            "layer_name": self.layer_name,
            "path": str(self.path),
            "runtime": self.target.runtime,
            "arch": self.target.arch,
            "packages": [
                {
                    "name": p.name,
                    "version": p.version,
                    "filename": p.file.filename,
                    "url": p.file.url,
                    "sha256": p.file.sha256,
                    "size": p.file.size,
                }
                for p in self.plan.packages
            ],
            "zip_size": self.zip_size,
            "unzipped_size": self.unzipped_size,
            "zip_sha256": self.zip_sha256,
            "content_hash": self.content_hash,
            "license_info": self.license_info,
            "dropped": list(self.dropped),
            "collisions": list(self.collisions),
            "excluded": [{"name": n, "required_by": list(by)} for n, by in self.plan.excluded],
        }


def _target_for(
    requirements: Sequence[str] | Plan, runtime: str | None, arch: str | None
) -> Target:
    if isinstance(requirements, Plan):
        planned = requirements.target
        asked = get_target(runtime or planned.runtime, arch or planned.arch)
        if asked != planned:
            raise LockMismatch(
                f"the plan was made for {planned}, not {asked}; "
                f"resolve again for {asked} or build with --runtime {planned.runtime} "
                f"--arch {planned.arch}"
            )
        return planned
    return get_target(runtime, arch)


def license_from_metadata(metadata: bytes) -> str | None:
    """``License-Expression``, then ``License``, then a license classifier, trimmed
    to what PublishLayerVersion accepts."""
    msg = BytesHeaderParser().parsebytes(metadata)
    value = msg.get("License-Expression") or msg.get("License")
    if not value or not str(value).strip() or str(value).strip().upper() == "UNKNOWN":
        classifiers = [
            c.split("::")[-1].strip()
            for c in msg.get_all("Classifier") or []
            if c.startswith("License ::")
        ]
        value = ", ".join(classifiers) if classifiers else None
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:MAX_LICENSE] or None


class _Downloads:
    """The plan's wheels, downloaded into *work* by a small pool as soon as they are
    known: during resolution, as the resolver pins each version, so that the
    transfers overlap the rest of the resolution instead of following it.

    *on_done* is called (in a download thread) with each wheel once its sha256 is
    checked.  A pin that backtracking undoes leaves a wheel no one collects; it goes
    with the work directory.  Early starts stop once the wheels started would not
    fit Lambda's limit or twice into the free space (the check :func:`check_room`
    makes on the whole plan before the rest are started).
    """

    def __init__(
        self, client: IndexClient, work: Path, on_done: Callable[[Path], None] | None
    ) -> None:
        self._client = client
        self._work = work
        self._on_done = on_done
        self._pool = concurrent.futures.ThreadPoolExecutor(8, "layerbuilder-dl")
        self._lock = threading.Lock()
        self._futures: dict[str, concurrent.futures.Future[Path]] = {}
        self._early_room = min(MAX_UNZIPPED, shutil.disk_usage(work).free // ZIP_HEADROOM)
        self._started = 0
        self._stop = threading.Event()
        self.progress = Progress(0, "downloading", enabled=False)

    def start_early(self, file: DistFile) -> None:
        """Start *file* now if it fits (see the class): the resolver's on_pin and
        on_guess (called from its threads)."""
        self.start(file, early=True)

    def start(self, file: DistFile, *, early: bool = False) -> None:
        with self._lock:
            if file.url in self._futures:
                return
            if early and self._started + (file.size or 0) > self._early_room:
                return
            self._started += file.size or 0
            self._futures[file.url] = self._pool.submit(self._fetch, file)

    def _fetch(self, file: DistFile) -> Path:
        path = download(
            self._client.session, file, self._work, progress=self.progress, stop=self._stop
        )
        if self._on_done is not None:
            self._on_done(path)
        return path

    def collect(self, files: Sequence[DistFile], show_progress: bool | None) -> list[Path]:
        """Every one of *files*, downloaded (starting those not yet started); the
        first failure is raised once they have all finished."""
        total = sum(f.size or 0 for f in files)
        self.progress.retarget(total, f"downloading {len(files)} wheel(s)", show_progress)
        for f in files:
            self.start(f)
        try:
            futures = [self._futures[f.url] for f in files]
            concurrent.futures.wait(futures)
            return [fut.result() for fut in futures]
        finally:
            self.progress.close()

    def close(self) -> None:
        """Cancel what has not started, stop what is under way (after a failed
        resolution, or a pin undone: nobody will collect them) and wait for it."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _elf_scans(target: Target, verify: bool) -> Iterator[WheelScans | None]:
    """Background reads of each downloaded wheel's ELF members for ``verify``
    (None when not verifying); cancelled and joined on the way out."""
    if not verify:
        yield None
        return
    from .elfscan import WheelScans

    with WheelScans(target) as scans:
        yield scans


def _status(text: str, show: bool | None) -> None:
    """One line about a long stage, on a terminal only (like the download progress)."""
    stream = sys.stderr
    if show is False or (show is None and not stream.isatty()):
        return
    stream.write(text + "\n")
    stream.flush()


def _too_large(report: LayerReport, plan: Plan, paths: Sequence[Path]) -> LayerTooLarge:
    sizes = []
    for pkg, path in zip(plan.packages, paths):
        with zipfile.ZipFile(path) as zf:
            sizes.append((sum(i.file_size for i in zf.infolist()), pkg.name))
    sizes.sort(reverse=True)
    biggest = ", ".join(f"{name} ({size / 1e6:.1f} MB)" for size, name in sizes[:5])
    return LayerTooLarge(
        f"the layer unzips to {report.unzipped_size:,} bytes, over Lambda's limit of "
        f"{MAX_UNZIPPED:,} bytes for a function and all its layers; biggest packages: "
        f"{biggest}. Drop packages the runtime or another layer provides with --exclude "
        "(Exclude in the Lambda event), or split the requirements across layers"
    )


def _destination(
    plan: Plan, target: Target, layer_name: str | None, output: str | Path | None
) -> tuple[str, Path]:
    """The layer's name and the zip's absolute path (its directory made)."""
    top = plan.packages[0]
    name = (
        validate_layer_name(layer_name)
        if layer_name is not None
        else default_layer_name(top.name, top.version, target)
    )
    out = (Path(output) if output is not None else Path(f"{name}.zip")).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    return name, out


def build_layer(
    requirements: Sequence[str] | Plan,
    runtime: str | None = None,
    arch: str | None = None,
    output: str | Path | None = None,
    *,
    index_url: str | None = None,
    client: IndexClient | None = None,
    no_deps: bool = False,
    exclude: Sequence[str] = (),
    exclude_newer: datetime | str | None = None,
    pre: bool = False,
    layer_name: str | None = None,
    work_dir: str | Path | None = None,
    verify: bool = True,
    progress: bool | None = None,
) -> BuildResult:
    """Build a layer zip for *requirements* (or a ready :class:`Plan`).

    *runtime* and *arch* default to python3.12 on x86_64 (or the plan's target).
    The zip lands at *output* (default ``./<layer name>.zip``) only once it is
    complete and verified; a failed build leaves nothing behind.
    """
    target = _target_for(requirements, runtime, arch)
    if isinstance(exclude_newer, str):
        exclude_newer = parse_timestamp(exclude_newer)
    own_client = client is None
    if client is None:
        client = IndexClient(index_url)
    timings: dict[str, float] = {}
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="layerbuilder-", dir=work_dir))
    try:
        with _elf_scans(target, verify) as scans:
            prepared: dict[Path, PreparedWheel] = {}

            def landed(wheel: Path) -> None:
                """Each wheel, once downloaded: read for the zip (so that writing the
                zip is only copying), then its ELF reads start from what was read."""
                ready = None
                try:
                    ready = prepared[wheel] = prepare_wheel(wheel, target)
                except Exception as exc:  # write_layer reads it again and says what is wrong
                    log.debug("reading %s for the zip failed: %s", wheel.name, exc)
                if scans is not None:
                    scans.submit(wheel, ready)

            downloads = _Downloads(client, work, landed)
            try:
                if isinstance(requirements, Plan):
                    plan = requirements
                else:
                    from .resolver import resolve

                    started = time.perf_counter()
                    plan = resolve(
                        list(requirements),
                        target,
                        client=client,
                        no_deps=no_deps,
                        exclude=exclude,
                        exclude_newer=exclude_newer,
                        pre=pre,
                        on_pin=downloads.start_early,
                        on_guess=downloads.start_early,
                    )
                    timings["resolve"] = time.perf_counter() - started
                    client.forget_pages()  # the plan holds the files it needs
                log.info("resolved %d package(s) for %s", len(plan.packages), target)
                if not plan.packages:
                    raise LockMismatch("nothing to build: the plan holds no packages")
                name, out = _destination(plan, target, layer_name, output)

                check_room([p.file for p in plan.packages], work)
                started = time.perf_counter()
                paths = downloads.collect([p.file for p in plan.packages], progress)
                timings["download"] = time.perf_counter() - started
            finally:
                downloads.close()

            # (read again only if reading it on landing failed: then this says why)
            top = prepared.get(paths[0]) or prepare_wheel(paths[0], target)
            metadata = wheel_metadata(top)
            license_info = license_from_metadata(metadata) if metadata else None

            started = time.perf_counter()
            _status(f"writing {out.name} ({len(paths)} wheel(s))", progress)
            report = write_layer(paths, target, out, prepared=prepared)
            timings["zip"] = time.perf_counter() - started
            # the wheels' member records are done with: free them for verify's
            prepared.clear()
            del top
            give_back_free_memory()
            try:
                if report.unzipped_size > MAX_UNZIPPED:
                    raise _too_large(report, plan, paths)
                if scans is not None:
                    from .verify import verify_layer

                    started = time.perf_counter()
                    _status(f"verifying {out.name} for {target}", progress)
                    scanned = scans.results(paths)
                    waited = time.perf_counter() - started
                    verify_layer(report.path, target, scanned=scanned).raise_for_errors()
                    timings["verify"] = time.perf_counter() - started
                    log.info(
                        "verify read %d zip member(s) from the wheels while downloading "
                        "and zipping, and waited %.3f s for them",
                        len(scanned),
                        waited,
                    )
            except BaseException:
                out.unlink(missing_ok=True)
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own_client:
            client.close()

    for stage, seconds in timings.items():
        log.info("%s took %.3f s", stage, seconds)
    return BuildResult(
        path=report.path,
        layer_name=name,
        target=target,
        plan=plan,
        zip_size=report.zip_size,
        unzipped_size=report.unzipped_size,
        zip_sha256=report.sha256,
        dropped=report.dropped,
        collisions=report.collisions,
        license_info=license_info,
        timings=timings,
    )
