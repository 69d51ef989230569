"""Where a media bucket's URLs point, worked out without credentials or network.

``core.settings`` needs the bucket's origin before any storage exists, to let
pages show avatars from it (the ``img-src`` of the site's Content-Security-Policy);
``common.media_storage`` signs the URLs themselves. Both address the bucket the
same way (``addressing_style``), and the origin comes from botocore's own
endpoint rules, so it is the host the signed URLs really have: for AWS it
depends on the region and on whether the bucket's name allows a virtual host.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Neither ships type information (no py.typed, no stubs in use).
import boto3  # type: ignore[import-untyped]
from botocore import UNSIGNED  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

_IMG_SRC = re.compile(r"(?:^|;)\s*img-src\b[^;]*")


def addressing_style(endpoint_url: str | None) -> str | None:
    """Path-style for a custom endpoint (MinIO, R2, a local server); AWS picks its own."""
    return "path" if endpoint_url else None


def bucket_origin(*, bucket: str, endpoint_url: str | None, region: str | None) -> str:
    """The scheme, host and port of the URLs of ``bucket``'s objects."""
    # An unsigned client looks up no credentials (no instance metadata call).
    client = boto3.session.Session().client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            signature_version=UNSIGNED, s3={"addressing_style": addressing_style(endpoint_url)}
        ),
    )
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "x"})
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def policy_with_image_origin(policy: str, origin: str) -> str:
    """``policy`` (a Content-Security-Policy) with ``origin`` added to its img-src."""
    match = _IMG_SRC.search(policy)
    if match is None:
        raise ValueError("The Content-Security-Policy has no img-src directive to extend.")
    return f"{policy[: match.end()]} {origin}{policy[match.end() :]}"
