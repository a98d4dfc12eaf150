"""Live: do we pick the same whole closure as pip, for every Lambda target?

For each requirement set and target we compare the set of wheel filenames
``layerbuilder.resolve`` picks with the set a reference pip (see
``tests/pipref.py``) reports for::

    pip install --dry-run --ignore-installed --report - --only-binary=:all: \\
        --python-version 3.X --implementation cp --abi cp3X --platform ... \\
        --uploaded-prior-to T REQ...

pip evaluates environment markers against the interpreter it runs on, not
against ``--python-version``/``--platform``.  So pip is run twice: as it is
(host markers), and with its vendored ``packaging.markers.default_environment``
replaced by the target's environment (target markers), which is the faithful
reference.  The tests assert agreement with the latter; the command line also
reports the former, for docs/resolution.md::

    python tests/test_resolver_pip.py [--jobs N] [--sets 0,3] [--json out.json] > table.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipref import _clean_env, pip_version, reference_pip, simple_index_url

from layerbuilder.errors import LayerBuilderError
from layerbuilder.index import IndexClient, default_cache_dir
from layerbuilder.resolver import resolve
from layerbuilder.targets import ARCHES, RUNTIMES, Target

# Popular requirement sets, chosen by us: web, data, AWS, crypto, databases.
SETS: tuple[tuple[str, ...], ...] = (
    ("requests",),
    ("pandas",),
    ("pydantic",),
    ("scikit-learn",),
    ("pyjwt[crypto]",),
    ("aws-lambda-powertools[tracer]",),
    ("fastapi",),
    ("sqlalchemy",),
    ("boto3",),
    ("cryptography",),
    ("lxml",),
    ("pillow",),
    ("psycopg[binary]",),
    ("numpy",),
    ("scipy",),
    ("matplotlib",),
    ("httpx",),
    ("orjson",),
    ("polars",),
    ("pyarrow",),
    ("pandas", "requests", "pydantic"),
    ("aiohttp",),
    ("openai",),
)

CUTOFF = _dt.datetime(2026, 11, 1, tzinfo=_dt.timezone.utc)

_BOOT = (
    "import json, sys\n"
    "env = json.loads(sys.argv.pop(1))\n"
    "import pip._vendor.packaging.markers as m\n"
    "m.default_environment = lambda: dict(env)\n"
    "from pip._internal.cli.main import main\n"
    "sys.exit(main())\n"
)


@dataclass(frozen=True)
class Closure:
    """The wheel filenames one side picked, or why it failed."""

    files: frozenset[str] | None
    error: str | None = None

    def agrees(self, other: Closure) -> bool:
        return self.files == other.files


def all_targets() -> list[Target]:
    return [Target(runtime, arch) for runtime in RUNTIMES for arch in ARCHES]


def pip_closure(
    reqs: Sequence[str], target: Target, cutoff: _dt.datetime, *, target_markers: bool = True
) -> Closure:
    """The wheels the reference pip would install for *reqs* on *target*."""
    python = str(reference_pip())
    boot = ["-c", _BOOT, json.dumps(target.marker_environment())] if target_markers else []
    cmd = [
        python, *boot, *([] if target_markers else ["-m", "pip"]),
        "--isolated", "--disable-pip-version-check",
        "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
        "--index-url", simple_index_url(), *target.pip_args(),
        "--uploaded-prior-to", cutoff.isoformat(), *reqs,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), timeout=1200)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        return Closure(None, lines[-1] if lines else f"pip exited {proc.returncode}")
    report = json.loads(proc.stdout)
    return Closure(
        frozenset(
            unquote(urlsplit(i["download_info"]["url"]).path.rsplit("/", 1)[-1])
            for i in report.get("install") or []
        )
    )


def our_closure(
    reqs: Sequence[str], target: Target, cutoff: _dt.datetime, client: IndexClient
) -> Closure:
    try:
        plan = resolve(list(reqs), target, client=client, exclude_newer=cutoff)
    except LayerBuilderError as exc:
        first = str(exc).splitlines()[0]
        return Closure(None, f"{type(exc).__name__}: {first}")
    return Closure(frozenset(p.file.filename for p in plan.packages))


def _short(files: frozenset[str] | None) -> str:
    return "-" if files is None else ", ".join(sorted(files))


# -- the live test ---------------------------------------------------------------


@pytest.fixture(scope="module")
def live_client() -> Iterator[IndexClient]:
    client = IndexClient(cache_dir=default_cache_dir())
    yield client
    client.close()


@pytest.mark.live
@pytest.mark.parametrize("target", all_targets(), ids=str)
@pytest.mark.parametrize("reqs", SETS, ids=" ".join)
def test_same_closure_as_pip(
    reqs: tuple[str, ...], target: Target, live_client: IndexClient
) -> None:
    theirs = pip_closure(reqs, target, CUTOFF)
    ours = our_closure(reqs, target, CUTOFF, live_client)
    assert ours.files == theirs.files, (
        f"pip: {_short(theirs.files)} {theirs.error or ''}\n"
        f"ours: {_short(ours.files)} {ours.error or ''}"
    )


# -- the table for docs/resolution.md -------------------------------------------------


def _cell(ours: Closure, faithful: Closure, host: Closure) -> str:
    if not ours.agrees(faithful):
        return "**differs**"
    mark = "=" if ours.files is not None else "none"
    return mark if ours.agrees(host) else f"{mark} (host ≠)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="closure agreement with pip")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sets", default="", help="comma list of indexes into SETS")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sets = [SETS[int(i)] for i in args.sets.split(",") if i] or list(SETS)
    targets = all_targets()
    reference_pip()
    client = IndexClient(cache_dir=default_cache_dir())
    results: dict[tuple[tuple[str, ...], Target], tuple[Closure, Closure, Closure]] = {}

    def run(reqs: tuple[str, ...], target: Target) -> tuple[Closure, Closure, Closure]:
        ours = our_closure(reqs, target, CUTOFF, client)
        faithful = pip_closure(reqs, target, CUTOFF)
        host = pip_closure(reqs, target, CUTOFF, target_markers=False)
        return ours, faithful, host

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run, r, t): (r, t) for r in sets for t in targets}
        for future in concurrent.futures.as_completed(futures):
            reqs, target = futures[future]
            results[reqs, target] = ours, faithful, host = future.result()
            mark = "ok  " if ours.agrees(faithful) else "DIFF"
            print(f"{mark} {' '.join(reqs)} {target}", file=sys.stderr)
            if not ours.agrees(faithful) or not ours.agrees(host):
                print(f"   ours: {_short(ours.files)} {ours.error or ''}", file=sys.stderr)
                print(f"   pip : {_short(faithful.files)} {faithful.error or ''}", file=sys.stderr)
                print(f"   host: {_short(host.files)} {host.error or ''}", file=sys.stderr)
    total = len(results)
    faithful_ok = sum(o.agrees(f) for o, f, _ in results.values())
    host_ok = sum(o.agrees(h) for o, _, h in results.values())
    print(f"pip {pip_version()}; --uploaded-prior-to {CUTOFF.isoformat()}")
    print(f"agreement with pip (target markers): {faithful_ok}/{total}")
    print(f"agreement with pip (host markers): {host_ok}/{total}\n")
    print("| requirements | " + " | ".join(f"{t.runtime[6:]} {t.arch}" for t in targets) + " |")
    print("|---|" + "---|" * len(targets))
    for reqs in sets:
        cells = [_cell(*results[reqs, t]) for t in targets]
        print(f"| `{' '.join(reqs)}` | " + " | ".join(cells) + " |")
    if args.json is not None:
        dump: list[dict[str, Any]] = []
        for (reqs, t), (o, f, h) in results.items():
            dump.append(
                {
                    "requirements": list(reqs),
                    "runtime": t.runtime,
                    "arch": t.arch,
                    "ours": sorted(o.files) if o.files is not None else o.error,
                    "pip": sorted(f.files) if f.files is not None else f.error,
                    "pip_host_markers": sorted(h.files) if h.files is not None else h.error,
                }
            )
        args.json.write_text(json.dumps(dump, indent=1))
    client.close()
    return 0 if faithful_ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
