"""Publish a layer zip with boto3: inline or through S3, idempotent, to several
regions, optionally shared.

boto3 is imported inside the functions that call AWS, so ``import layerbuilder``
stays cheap.  Every AWS failure surfaces as :class:`~layerbuilder.errors.AwsError`
naming the AWS error code; the endpoint, region, credentials and profile come
from boto3's ordinary configuration (``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ...), never from this module.

Each published version carries a marker in its ``Description``
(:func:`format_description`): the layer's content hash (over the sorted wheel
sha256s and the target), its unzipped size and the top-level requirement.
Before publishing, :func:`find_existing` pages through the layer's versions
and returns one with the same content hash for the same runtime and
architecture, so publishing the same layer twice publishes once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .errors import AwsError, BadRequest, LayerTooLarge
from .limits import MAX_DESCRIPTION, MAX_INLINE_ZIP, MAX_LICENSE, MAX_REQUEST_BASE64, MAX_UNZIPPED
from .naming import validate_layer_name
from .targets import Target

__all__ = [
    "STAGING_BUCKET_ENV",
    "Marker",
    "PublishResult",
    "ZipFacts",
    "find_existing",
    "find_published",
    "format_description",
    "parse_description",
    "publish_layer",
    "resolve_regions",
    "validate_share",
    "zip_facts",
]

log = logging.getLogger(__name__)

#: Environment variable naming the S3 bucket that stages zips too big to send inline.
STAGING_BUCKET_ENV = "LAYERBUILDER_STAGING_BUCKET"
#: Prefix of staging object keys (the template's bucket expires them after a day).
STAGING_PREFIX = "layerbuilder-staging/"

MARKER = "layerbuilder:v1"
#: Hex digits of the content hash kept in the description (96 bits).
HASH_CHARS = 24
_MIN_HASH_CHARS = 16
_MARKER_RE = re.compile(
    rf"^{re.escape(MARKER)} sha=(?P<sha>[0-9a-f]{{{_MIN_HASH_CHARS},64}}) "
    r"size=(?P<size>[0-9]{1,15})(?: req=(?P<req>.*))?$",
    re.DOTALL,
)
# Room kept in the request for everything beside the base64 zip (JSON keys, quoting).
_REQUEST_OVERHEAD = 4096

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_ORG_RE = re.compile(r"o-[a-z0-9]{10,32}")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]{1,2}")


# -- the description marker (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """What :func:`parse_description` reads back from a layer version's description."""

    content_hash: str  # a prefix (>= 16 hex digits) of the layer's content hash
    unzipped_size: int
    requirement: str  # possibly trimmed

    def matches(self, content_hash: str) -> bool:
        return content_hash.lower().startswith(self.content_hash)


def format_description(content_hash: str, unzipped_size: int, requirement: str) -> str:
    """The description marker for a layer: at most 256 characters, the requirement
    trimmed (ending in ``...``) to fit."""
    if not re.fullmatch(rf"[0-9a-fA-F]{{{HASH_CHARS},}}", content_hash):
        raise BadRequest(f"content hash {content_hash!r} is not a hex digest")
    head = f"{MARKER} sha={content_hash[:HASH_CHARS].lower()} size={int(unzipped_size)}"
    req = " ".join(requirement.split())
    if not req:
        return head
    room = MAX_DESCRIPTION - len(head) - len(" req=")
    if len(req) > room:
        req = req[: room - 3].rstrip() + "..."
    return f"{head} req={req}"


def parse_description(description: str | None) -> Marker | None:
    """The :class:`Marker` in *description*, or None if it carries none."""
    if not description:
        return None
    m = _MARKER_RE.match(description.strip())
    if m is None:
        return None
    return Marker(m["sha"], int(m["size"]), m["req"] or "")


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    """One layer version in one region: published now, or found unchanged."""

    region: str
    layer_name: str
    layer_arn: str
    layer_version_arn: str
    version: int
    unchanged: bool
    code_sha256: str  # base64 sha256 of the zip, as Lambda reports it
    code_size: int
    unzipped_size: int | None = None
    shared_with: tuple[str, ...] = ()  # statement ids granted (or found) on this version

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["shared_with"] = list(self.shared_with)
        return out


def validate_share(share: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Check a sharing request ``{"Principal": "*"|"<account id>", "OrganizationId": "o-..."}``
    and return it normalised; :class:`BadRequest` naming the bad key otherwise."""
    if share is None:
        return None
    if not isinstance(share, Mapping):
        raise BadRequest(
            f"Share must be an object like {{'Principal': '*'}}, not {type(share).__name__}"
        )
    unknown = sorted(set(share) - {"Principal", "OrganizationId"})
    if unknown:
        raise BadRequest(
            f"unknown key Share.{unknown[0]}; Share takes Principal and OrganizationId"
        )
    principal = share.get("Principal")
    org = share.get("OrganizationId")
    if not isinstance(principal, str) or not (principal == "*" or _ACCOUNT_RE.fullmatch(principal)):
        raise BadRequest(
            f"Share.Principal must be '*' (everyone, or an organization with OrganizationId) "
            f"or a 12-digit AWS account id, not {principal!r}"
        )
    out = {"Principal": principal}
    if org is not None:
        if not isinstance(org, str) or not _ORG_RE.fullmatch(org):
            raise BadRequest(
                f"Share.OrganizationId must look like 'o-a1b2c3d4e5' (o- and 10 to 32 lowercase "
                f"letters or digits), not {org!r}"
            )
        if principal != "*":
            raise BadRequest(
                "Share.OrganizationId needs Share.Principal '*': Lambda grants an organization "
                f"through the principal '*', not through account {principal}"
            )
        out["OrganizationId"] = org
    return out


def statement_id(share: Mapping[str, str]) -> str:
    """A deterministic StatementId for a grant, so granting twice is recognised."""
    who = "all" if share["Principal"] == "*" else share["Principal"]
    org = share.get("OrganizationId")
    return f"layerbuilder-{who}" + (f"-{org}" if org else "")


# -- AWS plumbing ---------------------------------------------------------------------


@dataclass(frozen=True)
class ZipFacts:
    """What :func:`zip_facts` learns from a layer zip built elsewhere."""

    content_hash: str  # sha256 over the target and the zip's sha256
    zip_sha256: str
    unzipped_size: int
    sizes: dict[str, int]  # top-level package directory -> unzipped bytes


def zip_facts(zip_path: str | Path, target: Target) -> ZipFacts:
    """Content hash, unzipped size and per-package sizes of a ready layer zip, for
    publishing a zip without its plan (``layerbuilder publish layer.zip``).

    The content hash here covers the target and the zip's own sha256; layerbuilder's
    zips are deterministic, so rebuilding the same plan gives the same hash.
    """
    path = Path(zip_path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadRequest(f"cannot read layer zip {str(path)!r}: {exc}") from exc
    sizes: dict[str, int] = {}
    prefix = target.site_packages + "/"
    for info in infos:
        rel = info.filename[len(prefix) :] if info.filename.startswith(prefix) else info.filename
        top = rel.split("/", 1)[0]
        sizes[top] = sizes.get(top, 0) + info.file_size
    zip_sha = digest.hexdigest()
    content = hashlib.sha256(f"{target.runtime}/{target.arch}\nzip {zip_sha}\n".encode())
    return ZipFacts(content.hexdigest(), zip_sha, sum(sizes.values()), sizes)


def _new_session() -> Any:
    import boto3.session

    return boto3.session.Session()


def resolve_regions(regions: Sequence[str] | None, session: Any = None) -> list[str]:
    """The regions to publish to: *regions* (deduplicated, checked), else the
    configured one (``AWS_REGION``, then boto3's ``AWS_DEFAULT_REGION``/profile)."""
    if regions:
        out: list[str] = []
        for i, name in enumerate(regions):
            if not isinstance(name, str) or not _REGION_RE.fullmatch(name):
                raise BadRequest(
                    f"Regions[{i}] = {name!r} is not an AWS region name like 'us-east-1'"
                )
            if name not in out:
                out.append(name)
        return out
    region: str | None = os.environ.get("AWS_REGION")
    if not region:
        region = (session or _new_session()).region_name
    if not region:
        raise BadRequest(
            "no AWS region to publish to: pass --region (Regions in the Lambda event), "
            "or set AWS_REGION / AWS_DEFAULT_REGION or a region in your AWS profile"
        )
    return [region]


def _client_error_code(exc: BaseException) -> tuple[str | None, str]:
    from botocore.exceptions import ClientError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            err = seen.response.get("Error", {})
            return err.get("Code"), str(err.get("Message") or seen)
        seen = seen.__cause__ or seen.__context__
    return None, str(exc)


@contextlib.contextmanager
def _aws(action: str, region: str) -> Iterator[None]:
    """Turn botocore/boto3 failures inside the block into :class:`AwsError`."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AwsError(
            f"{action} in {region} failed: {type(exc).__name__}: {exc}. Configure AWS "
            "credentials (environment, AWS_PROFILE, or the function's execution role)",
            type(exc).__name__,
        ) from exc
    except EndpointConnectionError as exc:
        raise AwsError(
            f"{action} in {region} failed: EndpointConnectionError: {exc}. Check the region "
            "name, AWS_ENDPOINT_URL and the network",
            "EndpointConnectionError",
        ) from exc
    except NoRegionError as exc:
        raise BadRequest(
            f"{action} failed: no AWS region; set AWS_REGION or pass --region"
        ) from exc
    except ClientError as exc:
        code, message = _client_error_code(exc)
        raise AwsError(f"{action} in {region} failed: {code}: {message}", code) from exc
    except (BotoCoreError, Boto3Error) as exc:
        code, message = _client_error_code(exc)
        code = code or type(exc).__name__
        raise AwsError(f"{action} in {region} failed: {code}: {message}", code) from exc


# -- looking for an existing version ------------------------------------------------


def _pages(client: Any, layer_name: str, region: str) -> Iterator[Mapping[str, Any]]:
    with _aws(f"ListLayerVersions for layer {layer_name!r}", region):
        yield from client.get_paginator("list_layer_versions").paginate(LayerName=layer_name)


def find_existing(
    client: Any, layer_name: str, target: Target, content_hash: str, region: str = "?"
) -> PublishResult | None:
    """The newest version of *layer_name* whose description marker carries
    *content_hash* and which is compatible with *target*, or None.

    *client* is a boto3 Lambda client; every page of ``ListLayerVersions`` is read.
    """
    best: Mapping[str, Any] | None = None
    marker: Marker | None = None
    try:
        pages: Iterable[Mapping[str, Any]] = _pages(client, layer_name, region)
        for page in pages:
            for item in page.get("LayerVersions", ()):
                found = parse_description(item.get("Description"))
                if found is None or not found.matches(content_hash):
                    continue
                if target.runtime not in item.get("CompatibleRuntimes", ()):
                    continue
                # a version published without architectures is x86_64 to Lambda
                if target.arch not in (item.get("CompatibleArchitectures") or ["x86_64"]):
                    continue
                if best is None or int(item["Version"]) > int(best["Version"]):
                    best, marker = item, found
    except AwsError as exc:
        if exc.code != "ResourceNotFoundException":  # no such layer yet: no versions
            raise
    if best is None or marker is None:
        return None
    version = int(best["Version"])
    with _aws(f"GetLayerVersion {layer_name}:{version}", region):
        got = client.get_layer_version(LayerName=layer_name, VersionNumber=version)
    content = got.get("Content", {})
    return PublishResult(
        region=region,
        layer_name=layer_name,
        layer_arn=got["LayerArn"],
        layer_version_arn=got["LayerVersionArn"],
        version=version,
        unchanged=True,
        code_sha256=content.get("CodeSha256", ""),
        code_size=int(content.get("CodeSize", 0)),
        unzipped_size=marker.unzipped_size,
    )


# -- publishing -----------------------------------------------------------------------


def _fits_inline(zip_size: int, other_fields: Mapping[str, Any], inline_limit: int) -> bool:
    if zip_size > inline_limit:
        return False
    encoded = 4 * ((zip_size + 2) // 3)
    rest = len(json.dumps(other_fields)) + _REQUEST_OVERHEAD
    return encoded + rest <= MAX_REQUEST_BASE64


def _staging_bucket(s3_bucket: str | None, region: str, zip_size: int, limit: int) -> str:
    bucket = s3_bucket or os.environ.get(STAGING_BUCKET_ENV)
    if not bucket:
        raise BadRequest(
            f"the layer zip is {zip_size:,} bytes, too big to publish inline (at most "
            f"{limit:,} bytes and a request under {MAX_REQUEST_BASE64:,} bytes base64); "
            f"name an S3 bucket in {region} to stage it in with --s3-bucket or "
            f"{STAGING_BUCKET_ENV} (the SAM template creates one)"
        )
    return bucket.replace("{region}", region)


def _publish_version(
    lam: Any, region: str, fields: Mapping[str, Any], content: Mapping[str, Any]
) -> PublishResult:
    name = fields["LayerName"]
    with _aws(f"PublishLayerVersion for layer {name!r}", region):
        got = lam.publish_layer_version(Content=dict(content), **fields)
    return PublishResult(
        region=region,
        layer_name=name,
        layer_arn=got["LayerArn"],
        layer_version_arn=got["LayerVersionArn"],
        version=int(got["Version"]),
        unchanged=False,
        code_sha256=got.get("Content", {}).get("CodeSha256", ""),
        code_size=int(got.get("Content", {}).get("CodeSize", 0)),
    )


def _publish_via_s3(
    session: Any,
    lam: Any,
    region: str,
    bucket: str,
    zip_path: Path,
    fields: Mapping[str, Any],
    content_hash: str,
) -> PublishResult:
    from boto3.s3.transfer import TransferConfig

    s3 = session.client("s3", region_name=region)
    # a fresh key per attempt: concurrent publishes never delete each other's object
    unique = f"{content_hash[:HASH_CHARS]}-{uuid.uuid4().hex}"
    key = f"{STAGING_PREFIX}{fields['LayerName']}/{unique}.zip"
    config = TransferConfig(
        multipart_threshold=16 * 1024 * 1024,
        multipart_chunksize=16 * 1024 * 1024,
        max_concurrency=4,
    )
    try:
        started = time.perf_counter()
        with _aws(f"upload to s3://{bucket}/{key}", region):
            s3.upload_file(str(zip_path), bucket, key, Config=config)
        log.info("upload to s3://%s took %.3f s", bucket, time.perf_counter() - started)
        return _publish_version(lam, region, fields, {"S3Bucket": bucket, "S3Key": key})
    finally:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:  # never mask the publish result or its error
            log.warning(
                "could not delete staging object s3://%s/%s: %s (the bucket's lifecycle "
                "rule expires it)",
                bucket,
                key,
                exc,
            )


def _grant(lam: Any, result: PublishResult, share: Mapping[str, str]) -> str:
    from botocore.exceptions import ClientError

    sid = statement_id(share)
    name, version, region = result.layer_name, result.version, result.region
    if result.unchanged:
        # an existing version may hold the grant already
        try:
            policy = lam.get_layer_version_policy(LayerName=name, VersionNumber=version)
            statements = json.loads(policy.get("Policy") or "{}").get("Statement", [])
            if any(s.get("Sid") == sid for s in statements):
                return sid
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                code, message = _client_error_code(exc)
                raise AwsError(
                    f"GetLayerVersionPolicy {name}:{version} in {region} failed: {code}: {message}",
                    code,
                ) from exc
    args: dict[str, Any] = {
        "LayerName": name,
        "VersionNumber": version,
        "StatementId": sid,
        "Action": "lambda:GetLayerVersion",
        "Principal": share["Principal"],
    }
    if "OrganizationId" in share:
        args["OrganizationId"] = share["OrganizationId"]
    try:
        with _aws(f"AddLayerVersionPermission {name}:{version}", region):
            lam.add_layer_version_permission(**args)
    except AwsError as exc:
        if exc.code != "ResourceConflictException":  # the statement exists already
            raise
    log.info("shared %s:%s in %s with %s", name, version, region, sid)
    return sid


def _size_guard(unzipped_size: int, sizes: Mapping[str, int] | None) -> None:
    if unzipped_size <= MAX_UNZIPPED:
        return
    biggest = ""
    if sizes:
        top = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        biggest = "; biggest packages: " + ", ".join(
            f"{name} ({size / 1e6:.1f} MB)" for name, size in top
        )
    raise LayerTooLarge(
        f"the layer unzips to {unzipped_size:,} bytes, over Lambda's limit of "
        f"{MAX_UNZIPPED:,} bytes for a function and all its layers{biggest}. Drop packages "
        "the runtime or another layer provides with --exclude (Exclude in the Lambda "
        "event), or split the requirements across layers; nothing was uploaded"
    )


def find_published(
    layer_name: str,
    *,
    target: Target,
    content_hash: str,
    regions: Sequence[str] | None = None,
    share: Mapping[str, str] | None = None,
    session: Any = None,
) -> list[PublishResult] | None:
    """The versions already holding *content_hash* for *target*, one per region, with
    *share* granted on them; None if any region lacks one (then nothing is granted).

    Lets a caller that knows the content hash before building (the Lambda handler,
    after resolving) skip downloading and zipping a layer that is already published.
    """
    layer_name = validate_layer_name(layer_name)
    share = validate_share(share)
    session = session or _new_session()
    found: list[tuple[Any, PublishResult]] = []
    for region in resolve_regions(regions, session):
        lam = session.client("lambda", region_name=region)
        existing = find_existing(lam, layer_name, target, content_hash, region)
        if existing is None:
            return None
        found.append((lam, existing))
    results = []
    for lam, existing in found:
        log.info(
            "%s:%d in %s already holds this content", layer_name, existing.version, existing.region
        )
        if share:
            existing = replace(existing, shared_with=(_grant(lam, existing, share),))
        results.append(existing)
    return results


def publish_layer(
    zip_path: str | Path,
    *,
    layer_name: str,
    target: Target,
    content_hash: str,
    requirement: str,
    unzipped_size: int,
    license_info: str | None = None,
    regions: Sequence[str] | None = None,
    share: Mapping[str, str] | None = None,
    force: bool = False,
    s3_bucket: str | None = None,
    sizes: Mapping[str, int] | None = None,
    inline_limit: int | None = None,
    session: Any = None,
) -> list[PublishResult]:
    """Publish the layer zip at *zip_path* as a version of *layer_name* in each region.

    - *regions*: default the configured region (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
      the profile's).
    - Unless *force*, a region that already has a version with the same
      *content_hash* for *target* keeps it (``unchanged=True``); nothing is uploaded.
    - A zip over *inline_limit* bytes (default 50 MB) or whose base64 request would
      be too large goes through S3: *s3_bucket*, else ``$LAYERBUILDER_STAGING_BUCKET``
      (``{region}`` in the name is replaced by the region: Lambda reads only from a
      bucket in the layer's own region).  The staging object is deleted afterwards,
      whether publishing worked or not.
    - *share* (``{"Principal": "*"|account, "OrganizationId": ...}``) grants
      ``lambda:GetLayerVersion`` on each version, new or unchanged.
    - *sizes* (package -> unzipped bytes), when given, names the biggest packages if
      *unzipped_size* passes Lambda's limit (checked before anything is uploaded).
    - *session*: a ``boto3.session.Session`` (e.g. with a profile); default a new one.
    """
    layer_name = validate_layer_name(layer_name)
    share = validate_share(share)
    _size_guard(unzipped_size, sizes)
    path = Path(zip_path)
    if not path.is_file():
        raise BadRequest(f"no layer zip at {str(path)!r}; build one first")
    zip_size = path.stat().st_size
    limit = MAX_INLINE_ZIP if inline_limit is None else inline_limit

    session = session or _new_session()
    region_list = resolve_regions(regions, session)
    fields: dict[str, Any] = {
        "LayerName": layer_name,
        "Description": format_description(content_hash, unzipped_size, requirement),
        "CompatibleRuntimes": [target.runtime],
        "CompatibleArchitectures": [target.arch],
    }
    if license_info and license_info.strip():
        fields["LicenseInfo"] = " ".join(license_info.split())[:MAX_LICENSE]
    inline = _fits_inline(zip_size, fields, limit)
    zip_bytes: bytes | None = None

    results: list[PublishResult] = []
    for region in region_list:
        lam = session.client("lambda", region_name=region)
        existing = None if force else find_existing(lam, layer_name, target, content_hash, region)
        if existing is not None:
            log.info(
                "%s:%d in %s already holds this content; not publishing",
                layer_name,
                existing.version,
                region,
            )
            result = existing
        else:
            started = time.perf_counter()
            if inline:
                if zip_bytes is None:
                    zip_bytes = path.read_bytes()  # read once, sent to every region
                result = _publish_version(lam, region, fields, {"ZipFile": zip_bytes})
            else:
                bucket = _staging_bucket(s3_bucket, region, zip_size, limit)
                result = _publish_via_s3(session, lam, region, bucket, path, fields, content_hash)
            result = replace(result, unzipped_size=unzipped_size)
            log.info(
                "publish of %s:%d in %s took %.3f s",
                layer_name,
                result.version,
                region,
                time.perf_counter() - started,
            )
        if share:
            result = replace(result, shared_with=(_grant(lam, result, share),))
        results.append(result)
    return results
