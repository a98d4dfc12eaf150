"""The Lambda function: build a layer from the index and publish it.

``layerbuilder.handler.lambda_handler`` takes an event such as
``{"ModuleName": "requests"}`` and answers ``{"statusCode": 200, "body": {...}}``
or ``{"statusCode": N, "body": {"error": "<Type>", "message": "..."}}`` with N
from :func:`layerbuilder.errors.http_status_for`.  The event keys, their
types and defaults are in :data:`EVENT_KEYS` and docs/lambda.md.

Order of work: validate the event, resolve, stop there for ``DryRun``; unless
``Force``, answer from an already published version with the same content hash
without downloading anything; else download, zip, verify (build_layer) and
publish.  Each invocation works in a fresh directory under /tmp that is removed
at the end, so warm invocations do not fill the disk.
"""

from __future__ import annotations

import difflib
import logging
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement as _PackagingInvalidRequirement
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .awslog import configure_logging, stage
from .errors import BadRequest, InvalidRequirement, LayerBuilderError, http_status_for
from .memory import fix_malloc_thresholds, limit_malloc_arenas
from .models import parse_timestamp
from .naming import default_layer_name, validate_layer_name
from .plan import Plan
from .targets import ARCHES, DEFAULT_RUNTIME, RUNTIMES, Target, get_target

__all__ = ["EVENT_KEYS", "Request", "lambda_handler", "parse_event"]

log = logging.getLogger(__name__)


#: Event key -> (expected JSON type, what it is).  Anything else is refused.
EVENT_KEYS: Mapping[str, tuple[type, str]] = {
    "ModuleName": (str, "a project name or requirement, e.g. 'pyjwt[crypto]>=2'"),
    "ModuleVersion": (str, "an exact version or a PEP 440 specifier"),
    "CustomLayerName": (str, "a layer name matching [A-Za-z0-9_-]{1,140}"),
    "Runtime": (str, "a Lambda Python runtime, e.g. 'python3.12'"),
    "Architecture": (str, "'x86_64' or 'arm64'"),
    "IncludeDependencies": (bool, "true or false"),
    "Exclude": (list, "a list of project names"),
    "ExcludeNewer": (str, "an ISO 8601 timestamp, e.g. '2025-01-31T00:00:00Z'"),
    "Regions": (list, "a list of AWS region names"),
    "Share": (dict, "an object {'Principal': '*'|'<account id>', 'OrganizationId': 'o-...'}"),
    "Force": (bool, "true or false"),
    "DryRun": (bool, "true or false"),
}

_JSON_TYPE = {str: "a string", bool: "a boolean", list: "a list", dict: "an object"}
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
_BARE_VERSION = re.compile(r"\s*v?[0-9][0-9A-Za-z.!+_-]*\s*")


@dataclass(frozen=True)
class Request:
    """A validated event."""

    requirement: str  # the one top-level requirement, version folded in
    project: str  # its normalised name
    target: Target
    layer_name: str | None = None
    no_deps: bool = False
    exclude: tuple[str, ...] = ()
    exclude_newer: datetime | None = None
    regions: tuple[str, ...] | None = None
    share: Mapping[str, str] | None = None
    force: bool = False
    dry_run: bool = False


# -- the event ------------------------------------------------------------------------


def default_runtime(environ: Mapping[str, str]) -> str:
    """This function's own runtime, from ``AWS_EXECUTION_ENV`` (``AWS_Lambda_python3.12``);
    python3.12 when that is absent or not a Python runtime."""
    m = re.search(r"(python3\.[0-9]+)", environ.get("AWS_EXECUTION_ENV", ""))
    if m and m.group(1) in RUNTIMES:
        return m.group(1)
    return DEFAULT_RUNTIME


def default_architecture(machine: str | None = None) -> str:
    """This function's own architecture.  Reading the host is right here and only
    here: it describes where the function runs, not what a target supports."""
    return _MACHINES.get((machine or platform.machine()).lower(), "x86_64")


def _typed(event: Mapping[str, Any], key: str) -> Any:
    value = event.get(key)
    if value is None:
        return None  # absent, or null: the default applies
    expected, what = EVENT_KEYS[key]
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise BadRequest(
            f"{key} must be {_JSON_TYPE[expected]} ({what}), not {type(value).__name__} {value!r}"[
                :300
            ]
        )
    return value


def _string_list(key: str, values: list[Any]) -> list[str]:
    for i, item in enumerate(values):
        if not isinstance(item, str) or not item.strip():
            raise BadRequest(f"{key}[{i}] must be a non-empty string, not {item!r}")
    return [v.strip() for v in values]


def _requirement(module_name: str, module_version: str | None) -> Requirement:
    try:
        req = Requirement(module_name.strip())
    except _PackagingInvalidRequirement as exc:
        raise InvalidRequirement(
            f"ModuleName {module_name!r} is not a project name or requirement: {exc}"
        ) from exc
    if req.url:
        raise BadRequest(
            f"ModuleName {module_name!r} is a direct URL reference; give a project on the "
            "index, e.g. 'requests' or 'requests==2.32.5'"
        )
    if module_version is None:
        return req
    text = module_version.strip()
    if _BARE_VERSION.fullmatch(text):
        try:
            version = Version(text)
        except InvalidVersion as exc:
            raise InvalidRequirement(
                f"ModuleVersion {module_version!r} is not a PEP 440 version or specifier"
            ) from exc
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            raise BadRequest(
                f"ModuleVersion {module_version!r} conflicts with the specifier "
                f"{str(req.specifier)!r} in ModuleName {module_name!r}; give the version "
                "in one of them"
            )
        spec = SpecifierSet(f"=={version}")
    else:
        try:
            spec = SpecifierSet(text)
        except InvalidSpecifier as exc:
            raise InvalidRequirement(
                f"ModuleVersion {module_version!r} is not a PEP 440 version or specifier, "
                "e.g. '1.26.4' or '>=2,<3'"
            ) from exc
        if req.specifier and req.specifier != spec:
            raise BadRequest(
                f"ModuleVersion {module_version!r} conflicts with the specifier "
                f"{str(req.specifier)!r} in ModuleName {module_name!r}; give the version "
                "in one of them"
            )
    req.specifier = spec
    return req


def parse_event(
    event: Any, environ: Mapping[str, str] | None = None, machine: str | None = None
) -> Request:
    """Validate *event* into a :class:`Request`; :class:`BadRequest` naming the key
    otherwise.  *environ* (default ``os.environ``) and *machine* (default the host's)
    give the defaults for ``Runtime`` and ``Architecture``."""
    if environ is None:
        environ = os.environ
    if not isinstance(event, Mapping):
        raise BadRequest(
            f'the event must be a JSON object like {{"ModuleName": "requests"}}, '
            f"not {type(event).__name__}"
        )
    for key in event:
        if key not in EVENT_KEYS:
            close = difflib.get_close_matches(str(key), EVENT_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise BadRequest(
                f"unknown key {str(key)!r} in the event{hint}; known keys: {', '.join(EVENT_KEYS)}"
            )
    module_name = _typed(event, "ModuleName")
    if module_name is None or not module_name.strip():
        raise BadRequest("ModuleName is required: the project to build, e.g. 'requests'")
    req = _requirement(module_name, _typed(event, "ModuleVersion"))

    layer_name = _typed(event, "CustomLayerName")
    if layer_name is not None:
        layer_name = validate_layer_name(layer_name)

    runtime = _typed(event, "Runtime") or default_runtime(environ)
    arch = _typed(event, "Architecture") or default_architecture(machine)
    if runtime not in RUNTIMES:
        raise BadRequest(f"Runtime {runtime!r} is not supported; use one of {', '.join(RUNTIMES)}")
    if arch not in ARCHES:
        raise BadRequest(f"Architecture {arch!r} is not supported; use one of {', '.join(ARCHES)}")

    include = _typed(event, "IncludeDependencies")
    exclude = _string_list("Exclude", _typed(event, "Exclude") or [])
    for i, name in enumerate(exclude):
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
            raise BadRequest(f"Exclude[{i}] = {name!r} is not a project name")
    stamp = _typed(event, "ExcludeNewer")
    exclude_newer = None
    if stamp is not None:
        try:
            exclude_newer = parse_timestamp(stamp)
        except ValueError as exc:
            raise BadRequest(
                f"ExcludeNewer {stamp!r} is not an ISO 8601 timestamp, e.g. "
                "'2025-01-31T00:00:00Z' or '2025-01-31'"
            ) from exc

    regions = _typed(event, "Regions")
    if regions is not None:
        if not regions:
            raise BadRequest("Regions must list at least one region, or be left out")
        from .publish import resolve_regions

        regions = tuple(resolve_regions(_string_list("Regions", regions)))

    share = _typed(event, "Share")
    if share is not None:
        from .publish import validate_share

        share = validate_share(share)

    return Request(
        requirement=str(req),
        project=canonicalize_name(req.name),
        target=get_target(runtime, arch),
        layer_name=layer_name,
        no_deps=include is False,
        exclude=tuple(canonicalize_name(n) for n in exclude),
        exclude_newer=exclude_newer,
        regions=regions,
        share=share,
        force=bool(_typed(event, "Force")),
        dry_run=bool(_typed(event, "DryRun")),
    )


# -- the work ---------------------------------------------------------------------------


def _top(plan: Plan, project: str) -> tuple[str, str]:
    top = plan.get(project) or (plan.packages[0] if plan.packages else None)
    if top is None:
        raise BadRequest(f"nothing to build: {project!r} resolved to no package")
    return top.name, top.version


def _packages(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "version": p.version,
            "filename": p.file.filename,
            "sha256": p.file.sha256,
        }
        for p in plan.packages
    ]


def _body(
    req: Request,
    plan: Plan,
    layer_name: str,
    results: Sequence[Any],
    zip_size: int | None,
    unzipped_size: int | None,
) -> dict[str, Any]:
    first = results[0]
    return {
        "LayerName": layer_name,
        "LayerVersionArn": first.layer_version_arn,
        "Version": first.version,
        "Unchanged": all(r.unchanged for r in results),
        "Packages": _packages(plan),
        "ZipSize": zip_size if zip_size is not None else first.code_size,
        "UnzippedSize": unzipped_size if unzipped_size is not None else first.unzipped_size,
        "ContentSha256": plan.content_hash,
        "Runtime": req.target.runtime,
        "Architecture": req.target.arch,
        "Regions": [
            {
                "Region": r.region,
                "LayerVersionArn": r.layer_version_arn,
                "Version": r.version,
                "Unchanged": r.unchanged,
            }
            for r in results
        ],
    }


def handle(req: Request) -> dict[str, Any]:
    """Do what *req* asks; the success body.  Raises :class:`LayerBuilderError`."""
    from .download import check_room
    from .index import IndexClient
    from .resolver import resolve

    client = IndexClient()
    try:
        with stage("resolve"):
            plan = resolve(
                [req.requirement],
                req.target,
                client=client,
                no_deps=req.no_deps,
                exclude=req.exclude,
                exclude_newer=req.exclude_newer,
            )
        log.info("resolved %d package(s) for %s", len(plan.packages), req.target)
        project, version = _top(plan, req.project)
        layer_name = req.layer_name or default_layer_name(project, version, req.target)

        if req.dry_run:
            # the declared sizes may already prove the layer too big; no file is written
            check_room([p.file for p in plan.packages], Path(tempfile.gettempdir()))
            return {
                "DryRun": True,
                "LayerName": layer_name,
                "LayerVersionArn": None,
                "Version": None,
                "Unchanged": None,
                "Packages": _packages(plan),
                "ZipSize": None,
                "UnzippedSize": None,
                "DeclaredSize": plan.declared_size,
                "ContentSha256": plan.content_hash,
                "Runtime": req.target.runtime,
                "Architecture": req.target.arch,
            }

        import boto3.session

        from .publish import find_published, publish_layer

        session = boto3.session.Session()  # one session: clients load their models once
        regions = list(req.regions) if req.regions else None
        if not req.force:
            with stage("lookup"):
                found = find_published(
                    layer_name,
                    target=req.target,
                    content_hash=plan.content_hash,
                    regions=regions,
                    share=req.share,
                    session=session,
                )
            if found:
                return _body(req, plan, layer_name, found, None, None)

        from .build import build_layer

        work = Path(tempfile.mkdtemp(prefix="layerbuilder-"))
        try:
            # build_layer logs the download, zip and verify timings itself
            built = build_layer(
                plan,
                output=work / f"{layer_name}.zip",
                client=client,
                layer_name=layer_name,
                work_dir=work,
                progress=False,
            )
            with stage("publish"):
                results = publish_layer(
                    built.path,
                    layer_name=layer_name,
                    target=req.target,
                    content_hash=plan.content_hash,
                    requirement=req.requirement,
                    unzipped_size=built.unzipped_size,
                    license_info=built.license_info,
                    regions=regions,
                    share=req.share,
                    force=req.force,
                    session=session,
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return _body(req, plan, layer_name, results, built.zip_size, built.unzipped_size)
    finally:
        client.close()


def _summary(req: Request) -> str:
    """What the request asks, for the log (no secrets are in an event, but log only
    the validated fields anyway, never the raw event)."""
    flags = [
        name
        for name, on in (
            ("no-deps", req.no_deps),
            ("force", req.force),
            ("dry-run", req.dry_run),
            ("share", req.share is not None),
        )
        if on
    ]
    return (
        f"{req.requirement!r} for {req.target}"
        + (f" as {req.layer_name}" if req.layer_name else "")
        + (f" in {', '.join(req.regions)}" if req.regions else "")
        + (f" excluding {', '.join(req.exclude)}" if req.exclude else "")
        + (f" [{', '.join(flags)}]" if flags else "")
    )


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The function's entry point (``layerbuilder.handler.lambda_handler``)."""
    limit_malloc_arenas()
    fix_malloc_thresholds()
    configure_logging()
    request_id = getattr(context, "aws_request_id", None) or "-"
    try:
        req = parse_event(event)
        log.info("request %s: %s", request_id, _summary(req))
        body = handle(req)
    except LayerBuilderError as exc:
        status = http_status_for(exc)
        log.error("request %s failed with %d %s: %s", request_id, status, type(exc).__name__, exc)
        failure: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        report = getattr(exc, "report", None)  # verify's findings, when verification failed
        if report is not None:
            failure["findings"] = report.to_json()["findings"]
        return {"statusCode": status, "body": failure}
    except Exception as exc:
        log.exception("request %s failed unexpectedly", request_id)
        return {
            "statusCode": http_status_for(exc),
            "body": {
                "error": type(exc).__name__,
                "message": f"unexpected error: {exc}. This is a bug in layerbuilder; the "
                f"function's log has the traceback (request id {request_id})",
            },
        }
    log.info(
        "request %s: %s %s version %s%s",
        request_id,
        "dry run of" if body.get("DryRun") else "layer",
        body["LayerName"],
        body["Version"],
        " (unchanged)" if body.get("Unchanged") else "",
    )
    return {"statusCode": 200, "body": body}
