"""AWS Lambda's fixed limits that matter to a layer, in one place.

Values are bytes unless said otherwise.  See the Lambda quotas page of the AWS
documentation; these have been stable for years, but they are AWS's to change.
"""

from __future__ import annotations

__all__ = [
    "MAX_COMPATIBLE_RUNTIMES",
    "MAX_DESCRIPTION",
    "MAX_INLINE_ZIP",
    "MAX_LAYERS",
    "MAX_LICENSE",
    "MAX_REQUEST_BASE64",
    "MAX_UNZIPPED",
    "mb",
]

#: A function and all its layers, unzipped (250 MiB).
MAX_UNZIPPED = 262_144_000
#: A zip uploaded inline (``Content.ZipFile``) rather than from S3 (50 MiB).
MAX_INLINE_ZIP = 50 * 1024 * 1024
#: The largest request body: the inline zip travels base64-encoded within it.
MAX_REQUEST_BASE64 = 69_905_067
#: Layers per function.
MAX_LAYERS = 5
#: Characters in a layer version's description.
MAX_DESCRIPTION = 256
#: Characters in a layer version's ``LicenseInfo``.
MAX_LICENSE = 512
#: Entries in ``CompatibleRuntimes``.
MAX_COMPATIBLE_RUNTIMES = 15


def mb(size: int) -> str:
    """``size`` as AWS quotes its limits: ``"250.0 MB"`` for 262,144,000 bytes (MiB)."""
    return f"{size / (1024 * 1024):.1f} MB"
