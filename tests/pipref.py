"""A reference pip, to check that :mod:`layerbuilder.select` picks the wheel pip picks.

The product never runs pip; only the live agreement tests (and this module's
command line, which writes the table in ``docs/pip-agreement.md``) do.  The
newest pip is installed into a throwaway venv under a cache directory
(``$LAYERBUILDER_PIPREF_DIR``, default ``~/.cache/layerbuilder/pipref``) and run
with every configuration source cut off: ``PIP_CONFIG_FILE=/dev/null``, no
``PIP_*`` variables and ``--isolated``, against the default index's simple API,
with ``target.pip_args()`` but ``--python-version`` set to the runtime's full
version (``3.9.25``, not ``3.9``), as layerbuilder checks Requires-Python.

Command line::

    python tests/pipref.py [--jobs N] [--exclude-newer ISO] [--packages a,b] > table.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import fcntl
import functools
import json
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from distlib.locators import DEFAULT_INDEX
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from layerbuilder.errors import LayerBuilderError
from layerbuilder.models import ProjectPage, parse_simple_json
from layerbuilder.select import choose
from layerbuilder.targets import ARCHES, RUNTIMES, Target

__all__ = [
    "PACKAGES",
    "Outcome",
    "compare",
    "fetch_page",
    "our_pick",
    "pip_pick",
    "reference_pip",
    "simple_index_url",
]

# Popular projects with compiled wheels: the ones whose choice is not trivial.
PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "cryptography",
    "lxml",
    "pydantic-core",
    "orjson",
    "psycopg2-binary",
    "pillow",
    "grpcio",
    "pyarrow",
    "regex",
    "markupsafe",
    "pyyaml",
    "charset-normalizer",
    "cffi",
    "ujson",
    "msgpack",
    "zstandard",
    "rpds-py",
    "aiohttp",
    "frozenlist",
    "yarl",
    "multidict",
    "bcrypt",
)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def simple_index_url() -> str:
    """The default index's simple API: the sibling ``/simple`` of distlib's JSON API URL."""
    return DEFAULT_INDEX.rstrip("/").rsplit("/", 1)[0] + "/simple"


def _cache_dir() -> Path:
    root = os.environ.get("LAYERBUILDER_PIPREF_DIR")
    if root:
        return Path(root)
    return Path.home() / ".cache" / "layerbuilder" / "pipref"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@functools.cache
def reference_pip() -> Path:
    """The Python of a venv holding the newest pip; made on first use (and kept)."""
    root = _cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    python = root / "venv" / "bin" / "python"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "venv" / ".ready").exists():
            venv.create(root / "venv", with_pip=True, clear=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "--isolated",
                    "install",
                    "--quiet",
                    "--upgrade",
                    "--index-url",
                    simple_index_url(),
                    "pip",
                ],
                check=True,
                env=_clean_env(),
            )
            (root / "venv" / ".ready").write_text("")
    return python


@functools.cache
def pip_version() -> str:
    out = subprocess.run(
        [str(reference_pip()), "-m", "pip", "--version"],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
    ).stdout
    return out.split()[1]


@functools.cache
def _supports_uploaded_prior_to() -> bool:
    out = subprocess.run(
        [str(reference_pip()), "-m", "pip", "install", "--help"],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
    ).stdout
    return "--uploaded-prior-to" in out


def _target_args(target: Target) -> list[str]:
    """``target.pip_args()`` with the runtime's full Python version: layerbuilder
    checks Requires-Python against it, as pip running on the runtime would."""
    args = target.pip_args()
    at = args.index("--python-version") + 1
    args[at] = RUNTIMES[target.runtime].full_version
    return args


@dataclass(frozen=True)
class Outcome:
    """What one side picked: a filename, or the failure (pip's last error line or
    our error class and message)."""

    filename: str | None
    error: str | None = None


def pip_pick(
    requirement: str,
    target: Target,
    *,
    exclude_newer: _dt.datetime | None = None,
    pre: bool = False,
    cache: bool = True,
) -> Outcome:
    """The file the reference pip would install for *requirement* on *target*."""
    python = reference_pip()
    cmd = [
        str(python), "-m", "pip", "--isolated", "--disable-pip-version-check",
        "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
        "--report", "-", "--index-url", simple_index_url(),
        *_target_args(target),
    ]  # fmt: skip
    if pre:
        cmd.append("--pre")
    if not cache:
        cmd.append("--no-cache-dir")
    if exclude_newer is not None:
        if not _supports_uploaded_prior_to():
            raise RuntimeError(f"pip {pip_version()} has no --uploaded-prior-to")
        cmd += ["--uploaded-prior-to", exclude_newer.isoformat()]
    cmd.append(requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), timeout=600)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return Outcome(None, lines[-1] if lines else f"pip exited {proc.returncode}")
    report = json.loads(proc.stdout)
    installs = report.get("install") or []
    if len(installs) != 1:
        return Outcome(None, f"pip reported {len(installs)} installs")
    url = installs[0]["download_info"]["url"]
    return Outcome(urlsplit(url).path.rsplit("/", 1)[-1])


def fetch_page(name: str, session: requests.Session | None = None) -> ProjectPage:
    """The project's page from the default index's simple API (what pip reads too)."""
    url = f"{simple_index_url()}/{canonicalize_name(name)}/"
    http = session or requests.Session()
    resp = http.get(url, headers={"Accept": SIMPLE_JSON}, timeout=120)
    resp.raise_for_status()
    return parse_simple_json(resp.json(), url)


def our_pick(
    page: ProjectPage,
    requirement: str,
    target: Target,
    *,
    exclude_newer: _dt.datetime | None = None,
    pre: bool = False,
) -> Outcome:
    try:
        found = choose(page, Requirement(requirement), target, pre=pre, exclude_newer=exclude_newer)
    except LayerBuilderError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}")
    return Outcome(found.file.filename)


def compare(
    requirement: str,
    target: Target,
    page: ProjectPage,
    *,
    exclude_newer: _dt.datetime | None = None,
    pre: bool = False,
) -> tuple[Outcome, Outcome]:
    """(pip's outcome, ours)."""
    theirs = pip_pick(requirement, target, exclude_newer=exclude_newer, pre=pre)
    ours = our_pick(page, requirement, target, exclude_newer=exclude_newer, pre=pre)
    return theirs, ours


def all_targets() -> list[Target]:
    return [Target(runtime, arch) for runtime in RUNTIMES for arch in ARCHES]


def _agree(theirs: Outcome, ours: Outcome) -> bool:
    return theirs.filename == ours.filename


_GLIBC = re.compile(r"manylinux_(\d+)_(\d+)_")
_LEGACY = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}


def short(filename: str) -> str:
    """``2.2.6 cp311 2.17``: version, ABI and the oldest glibc of a wheel's tags."""
    _, version, _, tags = parse_wheel_filename(filename)
    abis = sorted({t.abi for t in tags})
    glibcs = []
    for tag in tags:
        m = _GLIBC.match(tag.platform)
        if m:
            glibcs.append((int(m.group(1)), int(m.group(2))))
        prefix = tag.platform.split("_", 1)[0]
        if prefix in _LEGACY:
            major, minor = _LEGACY[prefix].split(".")
            glibcs.append((int(major), int(minor)))
    where = "{}.{}".format(*min(glibcs)) if glibcs else "any"
    abi = "py3" if abis == ["none"] else "/".join(abis)
    return f"{version} {abi} {where}"


def _table(
    packages: Sequence[str],
    targets: Sequence[Target],
    results: dict[tuple[str, Target], tuple[Outcome, Outcome]],
) -> Iterable[str]:
    """One row per project and architecture; a cell is pip's pick (version, ABI,
    oldest glibc), bold where layerbuilder picked something else."""
    runtimes = sorted({t.runtime for t in targets}, key=lambda r: RUNTIMES[r].python_version)
    arches = [a for a in ARCHES if any(t.arch == a for t in targets)]
    yield "| project | arch | " + " | ".join(runtimes) + " |"
    yield "|---|---|" + "---|" * len(runtimes)
    for name in packages:
        for arch in arches:
            cells = []
            for runtime in runtimes:
                theirs, ours = results[name, Target(runtime, arch)]
                cell = short(theirs.filename) if theirs.filename else "no fit"
                if not _agree(theirs, ours):
                    ours_cell = short(ours.filename) if ours.filename else "no fit"
                    cell = f"**pip {cell}, ours {ours_cell}**"
                cells.append(cell)
            yield f"| {name} | {arch} | " + " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--exclude-newer", default=None, help="ISO 8601 instant")
    parser.add_argument("--json", type=Path, default=None, help="also dump every outcome here")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="only print the table of an earlier --json"
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        rows = json.loads(args.from_json.read_text())
        loaded = {
            (r["project"], Target(r["runtime"], r["arch"])): (
                Outcome(**r["pip"]),
                Outcome(**r["ours"]),
            )
            for r in rows
        }
        names = list(dict.fromkeys(n for n, _ in loaded))
        for line in _table(names, sorted({t for _, t in loaded}, key=str), loaded):
            print(line)
        return 0
    packages = [p for p in args.packages.split(",") if p]
    cutoff = _dt.datetime.fromisoformat(args.exclude_newer) if args.exclude_newer else None
    if cutoff is not None and cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=_dt.timezone.utc)
    targets = all_targets()
    reference_pip()
    session = requests.Session()
    pages = {name: fetch_page(name, session) for name in packages}
    results: dict[tuple[str, Target], tuple[Outcome, Outcome]] = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(compare, name, target, pages[name], exclude_newer=cutoff): (name, target)
            for name in packages
            for target in targets
        }
        for future in concurrent.futures.as_completed(futures):
            name, target = futures[future]
            results[name, target] = future.result()
            theirs, ours = results[name, target]
            mark = "ok " if _agree(theirs, ours) else "DIFF"
            print(f"{mark} {name} {target}: pip={theirs} ours={ours}", file=sys.stderr)
    agree = sum(_agree(*r) for r in results.values())
    print(f"pip {pip_version()}; exclude-newer {cutoff.isoformat() if cutoff else 'none'}")
    print(f"agreement: {agree}/{len(results)}\n")
    for line in _table(packages, targets, results):
        print(line)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "project": n,
                        "runtime": t.runtime,
                        "arch": t.arch,
                        "pip": vars(r[0]),
                        "ours": vars(r[1]),
                    }
                    for (n, t), r in sorted(
                        results.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
                    )
                ],
                indent=1,
            )
        )
    return 0 if agree == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
