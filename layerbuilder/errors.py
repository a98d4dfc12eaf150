"""One root exception, a subclass per failure, and the one table that maps
each failure class to a CLI exit code and an HTTP status code.

Messages quote the bad input and say what the user can do next.  The CLI
(:mod:`layerbuilder.cli`) and the Lambda handler (:mod:`layerbuilder.handler`)
both call :func:`exit_code_for` / :func:`http_status_for`; nothing else maps
errors to codes.
"""

from __future__ import annotations

__all__ = [
    "AwsError",
    "BadRequest",
    "ConflictError",
    "IndexUnavailable",
    "IntegrityError",
    "InvalidLayerName",
    "InvalidRequirement",
    "LayerBuilderError",
    "LayerTooLarge",
    "LockMismatch",
    "NoCompatibleWheel",
    "NotFound",
    "ProjectNotFound",
    "ResolutionImpossible",
    "SdistOnly",
    "UnknownTarget",
    "UnsafeWheel",
    "VerificationFailed",
    "VersionNotFound",
    "WorkspaceTooSmall",
    "exit_code_for",
    "http_status_for",
]


class LayerBuilderError(Exception):
    """Root of every error layerbuilder raises on purpose."""


# -- the request itself is wrong (400) -------------------------------------------------


class BadRequest(LayerBuilderError):
    """The arguments or event are malformed."""


class UnknownTarget(BadRequest):
    """An unknown runtime or architecture."""


class InvalidRequirement(BadRequest):
    """A requirement string (or requirements file line) that does not parse."""


class InvalidLayerName(BadRequest):
    """A layer name outside ``[A-Za-z0-9_-]{1,140}``."""


class LockMismatch(BadRequest):
    """A lock file made for another target, or one that does not parse."""


# -- not on the index (404) -----------------------------------------------------------


class NotFound(LayerBuilderError):
    """The index does not have what was asked for."""


class ProjectNotFound(NotFound):
    """The index answered 404 for the project."""


class VersionNotFound(NotFound):
    """The project exists but not the pinned version."""


# -- cannot be satisfied (409) ----------------------------------------------------------


class ConflictError(LayerBuilderError):
    """The requirements cannot all hold at once."""


class ResolutionImpossible(ConflictError):
    """The resolver proved no consistent set exists."""


# -- too large (413) ----------------------------------------------------------


class LayerTooLarge(LayerBuilderError):
    """The layer passes one of Lambda's size limits."""


class WorkspaceTooSmall(LayerTooLarge):
    """The work directory has no room for the download."""


# -- nothing fits the target (422) -------------------------------------------------------


class NoCompatibleWheel(LayerBuilderError):
    """No file of the project fits the target."""


class SdistOnly(NoCompatibleWheel):
    """Only a source distribution exists, and layerbuilder does not build them."""


class UnsafeWheel(LayerBuilderError):
    """A wheel holds a member that must not be unpacked (zip-slip, symlink, ...)."""


class VerificationFailed(LayerBuilderError):
    """``verify`` found problems that would stop the layer loading on Lambda."""


# -- an upstream failed (502) ----------------------------------------------------------


class IndexUnavailable(LayerBuilderError):
    """The index could not be reached or answered with an error other than 404."""


class IntegrityError(LayerBuilderError):
    """A download did not match its declared sha256 or size."""


class AwsError(LayerBuilderError):
    """An AWS API call failed; the message names the AWS error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


# The one table: error class -> (CLI exit code, HTTP status code).
# Looked up along the MRO, so a subclass inherits its parent's codes unless listed.
_CODES: dict[type[BaseException], tuple[int, int]] = {
    LayerBuilderError: (1, 500),
    BadRequest: (2, 400),
    NotFound: (3, 404),
    ConflictError: (4, 409),
    LayerTooLarge: (5, 413),
    NoCompatibleWheel: (6, 422),
    UnsafeWheel: (7, 422),
    VerificationFailed: (8, 422),
    IndexUnavailable: (9, 502),
    IntegrityError: (10, 502),
    AwsError: (11, 502),
}

UNEXPECTED = (70, 500)  # EX_SOFTWARE: a bug, not a user error


def _codes(exc: BaseException | type[BaseException]) -> tuple[int, int]:
    kind = exc if isinstance(exc, type) else type(exc)
    for cls in kind.__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return UNEXPECTED


def exit_code_for(exc: BaseException | type[BaseException]) -> int:
    """The CLI exit code for *exc*, an error or its class (70 for anything unexpected)."""
    return _codes(exc)[0]


def http_status_for(exc: BaseException | type[BaseException]) -> int:
    """The handler's status code for *exc*, an error or its class (500 for anything
    unexpected)."""
    return _codes(exc)[1]
