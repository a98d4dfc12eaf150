"""The command line: a thin adapter over the library.

``main(argv) -> int`` parses arguments, calls the core, prints, and maps
errors to exit codes through :func:`layerbuilder.errors.exit_code_for` (the one
table).  Nothing here decides anything about packages or targets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import BadRequest, LayerBuilderError, VerificationFailed, exit_code_for
from .memory import fix_malloc_thresholds, limit_malloc_arenas, no_cyclic_gc
from .targets import ARCHES, RUNTIMES, get_target

__all__ = ["EXIT_CODES", "main"]

# Documented in the README; the numbers come from errors.py.
EXIT_CODES = """\
exit codes:
  0   success
  1   other layerbuilder error
  2   bad arguments, unknown runtime/arch, bad requirement or lock file
  3   project or version not on the index
  4   requirements conflict (unsatisfiable)
  5   layer too large for Lambda, or no room in the work directory
  6   no wheel fits the target (or only an sdist exists)
  7   unsafe wheel (zip-slip, symlink member)
  8   verification found problems (see `layerbuilder verify`)
  9   index unreachable or failing
  10  integrity failure (sha256 or size mismatch)
  11  AWS API error
  70  unexpected internal error (a bug: please report it)
  130 interrupted
"""


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runtime",
        default=None,
        metavar="R",
        help=f"Lambda runtime: {', '.join(RUNTIMES)} (default python3.12)",
    )
    p.add_argument(
        "--arch",
        default=None,
        metavar="A",
        help=f"architecture: {', '.join(ARCHES)} (default x86_64)",
    )


def _add_resolution(p: argparse.ArgumentParser) -> None:
    p.add_argument("requirements", nargs="*", metavar="REQ", help="requirement, e.g. numpy==2.3.*")
    p.add_argument(
        "-r",
        "--requirement",
        dest="req_files",
        action="append",
        default=[],
        metavar="FILE",
        help="read requirements from FILE (repeatable)",
    )
    _add_target(p)
    p.add_argument(
        "--index-url",
        metavar="URL",
        help="package index: a JSON API base or a /simple index "
        "(default $LAYERBUILDER_INDEX_URL, else the public index)",
    )
    p.add_argument("--no-deps", action="store_true", help="take only the given requirements")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NAME",
        help="leave NAME out (provided by the runtime or another layer); repeatable",
    )
    p.add_argument(
        "--exclude-newer",
        metavar="TIMESTAMP",
        help="ignore files uploaded at or after TIMESTAMP (ISO 8601; UTC if no zone)",
    )
    p.add_argument("--pre", action="store_true", help="allow pre-releases")
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="HTTP cache (default $LAYERBUILDER_CACHE_DIR or ~/.cache/layerbuilder)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use the HTTP cache")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_publish_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--region",
        dest="regions",
        action="append",
        default=[],
        metavar="REGION",
        help="publish to REGION (repeatable; default: boto3's configured region)",
    )
    p.add_argument(
        "--s3-bucket",
        metavar="BUCKET",
        help="staging bucket for zips too big to upload inline "
        "(default $LAYERBUILDER_STAGING_BUCKET)",
    )
    p.add_argument("--force", action="store_true", help="publish even if unchanged")
    p.add_argument(
        "--share-principal",
        metavar="P",
        help="grant lambda:GetLayerVersion to P ('*' or an account id)",
    )
    p.add_argument("--share-org", metavar="ORG_ID", help="limit --share-principal '*' to o-…")


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="layerbuilder",
        description="Build AWS Lambda layers for Python from the package index, "
        "without pip or Docker.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"layerbuilder {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    b = sub.add_parser("build", help="build a layer zip", epilog=EXIT_CODES, formatter_class=raw)
    _add_resolution(b)
    b.add_argument("-o", "--output", metavar="ZIP", help="where to write (default <name>.zip)")
    b.add_argument("--layer-name", metavar="NAME", help="layer name ([A-Za-z0-9_-]{1,140})")
    b.add_argument("--lock", metavar="PYLOCK", help="build exactly this pylock.toml")
    b.add_argument("--work-dir", metavar="DIR", help="where wheels are downloaded (default tmp)")
    b.add_argument("--no-verify", action="store_true", help="skip `verify` on the output")
    b.add_argument("--publish", action="store_true", help="publish the layer with boto3")
    _add_publish_options(b)

    r = sub.add_parser(
        "resolve", help="pick the wheels; download nothing", epilog=EXIT_CODES, formatter_class=raw
    )
    _add_resolution(r)
    r.add_argument("--lock", metavar="PYLOCK", help="write a PEP 751 lock to PYLOCK")

    p = sub.add_parser(
        "publish", help="publish a layer zip", epilog=EXIT_CODES, formatter_class=raw
    )
    p.add_argument("zip", metavar="LAYER.zip")
    p.add_argument("--layer-name", required=True, metavar="NAME")
    _add_target(p)
    p.add_argument("--requirement-label", metavar="TEXT", help="what the layer holds (description)")
    _add_publish_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    v = sub.add_parser("verify", help="check a layer zip will load on its runtime")
    v.add_argument("zip", metavar="LAYER.zip")
    _add_target(v)
    v.add_argument(
        "--with",
        dest="with_layers",
        action="append",
        default=[],
        metavar="OTHER.zip",
        help="the function's other layers, for the combined size and overlaps (repeatable)",
    )
    v.add_argument("--json", action="store_true", help="print the findings as JSON")

    sub.add_parser("targets", help="list the supported runtimes and architectures")
    return parser


# -- commands -----------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Any:
    from .index import IndexClient, default_cache_dir

    cache = None if args.no_cache else Path(args.cache_dir or default_cache_dir())
    return IndexClient(args.index_url, cache_dir=cache)


def _requirements(args: argparse.Namespace) -> list[str]:
    """The requirements from arguments and ``-r`` files.  A file's ``--index-url``
    and ``--pre`` apply unless the command line says otherwise."""
    reqs: list[str] = list(args.requirements)
    if args.req_files:
        from .requirements import parse_requirements_file

        for f in args.req_files:
            parsed = parse_requirements_file(f)
            reqs.extend(parsed.lines)
            args.index_url = args.index_url or parsed.index_url
            args.pre = args.pre or parsed.pre
    if not reqs:
        raise BadRequest("no requirements given: name at least one (e.g. `numpy`) or use -r FILE")
    return reqs


def _exclude_newer(args: argparse.Namespace) -> Any:
    if not args.exclude_newer:
        return None
    from .models import parse_timestamp

    try:
        return parse_timestamp(args.exclude_newer)
    except ValueError:
        raise BadRequest(
            f"--exclude-newer {args.exclude_newer!r} is not an ISO 8601 timestamp; "
            "use e.g. 2025-06-01 or 2025-06-01T12:00:00Z"
        ) from None


def _resolve(args: argparse.Namespace, reqs: list[str], client: Any) -> Any:
    from .resolver import resolve

    return resolve(
        reqs,
        get_target(args.runtime, args.arch),
        client=client,
        no_deps=args.no_deps,
        exclude=args.exclude,
        exclude_newer=_exclude_newer(args),
        pre=args.pre,
    )


def _print_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=False)
    out.write("\n")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _cmd_resolve(args: argparse.Namespace, out: TextIO) -> int:
    reqs = _requirements(args)
    client = _client(args)
    try:
        plan = _resolve(args, reqs, client)
    finally:
        client.close()
    if args.lock:
        from .lock import write_lock

        write_lock(plan, args.lock)
    if args.json:
        _print_json(plan.to_json(), out)
    else:
        for p in plan.packages:
            out.write(f"{p.name}=={p.version}  {p.file.filename}\n")
        for name, by in plan.excluded:
            out.write(f"excluded {name} (needed by {', '.join(by) or 'nothing kept'})\n")
        if args.lock:
            out.write(f"wrote {args.lock}\n")
    return 0


def _share(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.share_principal:
        if args.share_org:
            raise BadRequest("--share-org needs --share-principal '*'")
        return None
    share = {"Principal": args.share_principal}
    if args.share_org:
        share["OrganizationId"] = args.share_org
    return share


def _cmd_build(args: argparse.Namespace, out: TextIO) -> int:
    from .build import build_layer

    source: Any
    if args.lock:
        if args.requirements or args.req_files:
            raise BadRequest("give either --lock or requirements, not both")
        from .lock import read_lock

        source = read_lock(args.lock, get_target(args.runtime, args.arch))
    else:
        source = _requirements(args)
    client = _client(args)
    try:
        result = build_layer(
            source,
            args.runtime,
            args.arch,
            args.output,
            client=client,
            no_deps=args.no_deps,
            exclude=args.exclude,
            exclude_newer=_exclude_newer(args),
            pre=args.pre,
            layer_name=args.layer_name,
            work_dir=args.work_dir,
            verify=not args.no_verify,
            progress=None if not args.json else False,
        )
    finally:
        client.close()
    published: list[Any] = []
    if args.publish:
        from .publish import publish_layer

        published = publish_layer(
            result.path,
            layer_name=result.layer_name,
            target=result.target,
            content_hash=result.content_hash,
            requirement=" ".join(result.plan.requirements),
            unzipped_size=result.unzipped_size,
            license_info=result.license_info,
            regions=args.regions or None,
            share=_share(args),
            force=args.force,
            s3_bucket=args.s3_bucket,
        )
    if args.json:
        data = result.to_json()
        if args.publish:
            data["published"] = [_publish_json(r) for r in published]
        _print_json(data, out)
        return 0
    out.write(f"layer {result.layer_name} for {result.target}\n")
    for p in result.plan.packages:
        out.write(f"  {p.name}=={p.version}  {p.file.filename}  sha256:{p.file.sha256}\n")
    for name, by in result.plan.excluded:
        out.write(f"  excluded {name} (needed by {', '.join(by) or 'nothing kept'})\n")
    for member in result.dropped:
        out.write(f"  dropped {member} (not importable from a layer)\n")
    for member in result.collisions:
        out.write(f"  warning: {member} is in more than one wheel; kept the first\n")
    out.write(
        f"wrote {result.path}: {_mb(result.zip_size)} zipped, "
        f"{_mb(result.unzipped_size)} unzipped, sha256 {result.zip_sha256}\n"
    )
    for r in published:
        state = "unchanged" if r.unchanged else "published"
        out.write(f"{state}: {r.layer_version_arn}\n")
    return 0


def _publish_json(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.to_json()
    return data


def _cmd_publish(args: argparse.Namespace, out: TextIO) -> int:
    from .naming import validate_layer_name
    from .publish import publish_layer, zip_facts

    path = Path(args.zip)
    if not path.is_file():
        raise BadRequest(f"{args.zip!r} is not a file; give the path of a layer zip")
    name = validate_layer_name(args.layer_name)
    target = get_target(args.runtime, args.arch)
    facts = zip_facts(path, target)
    results = publish_layer(
        path,
        layer_name=name,
        target=target,
        content_hash=facts.content_hash,
        requirement=args.requirement_label or path.name,
        unzipped_size=facts.unzipped_size,
        sizes=facts.sizes,
        regions=args.regions or None,
        share=_share(args),
        force=args.force,
        s3_bucket=args.s3_bucket,
    )
    if args.json:
        _print_json([_publish_json(r) for r in results], out)
    else:
        for r in results:
            state = "unchanged" if r.unchanged else "published"
            out.write(f"{state}: {r.layer_version_arn}\n")
    return 0


def _cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from .verify import verify_layer

    if not Path(args.zip).is_file():
        raise BadRequest(f"{args.zip!r} is not a file; give the path of a layer zip")
    report = verify_layer(
        args.zip,
        get_target(args.runtime, args.arch),
        with_layers=args.with_layers,
    )
    if args.json:
        _print_json(report.to_json(), out)
    else:
        out.write(report.format_text())
        if not report.format_text().endswith("\n"):
            out.write("\n")
    return 0 if report.ok else exit_code_for(VerificationFailed)


def _cmd_targets(args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"{'runtime':<12} {'python':<7} {'os':<18} {'glibc':<6} arches\n")
    for rt in RUNTIMES.values():
        out.write(
            f"{rt.name:<12} {'.'.join(map(str, rt.python_version)):<7} {rt.os_name:<18} "
            f"{'.'.join(map(str, rt.glibc)):<6} {', '.join(ARCHES)}\n"
        )
    return 0


_COMMANDS = {
    "build": _cmd_build,
    "resolve": _cmd_resolve,
    "publish": _cmd_publish,
    "verify": _cmd_verify,
    "targets": _cmd_targets,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see ``EXIT_CODES``)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or usage errors (2)
        return int(exc.code or 0)
    limit_malloc_arenas()
    fix_malloc_thresholds()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="[%(levelname)s] %(message)s",
        stream=sys.stderr,
    )
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except LayerBuilderError as exc:
        sys.stderr.write(f"layerbuilder: error: {exc}\n")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        sys.stderr.write("layerbuilder: interrupted\n")
        return 130
    except Exception as exc:
        traceback.print_exc()
        sys.stderr.write(
            "layerbuilder: internal error (a bug in layerbuilder; please report it "
            "with the traceback above)\n"
        )
        return exit_code_for(exc)


def run() -> None:
    """The ``layerbuilder`` command: :func:`main`, then exit without the
    interpreter's teardown.

    Everything a command starts is finished by the time :func:`main` returns (work
    directories removed, thread pools joined, cache writes done), so tearing down
    the interpreter object by object only costs time: 0.08-0.1 s after a build of
    pandas requests pydantic, measured.  Output is flushed and logging shut down
    first.  (mypy's entry point does the same.)
    """
    no_cyclic_gc()  # one command, then exit: see layerbuilder.memory
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the exit code still counts
        code = code or 1
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
