"""Media (avatars, job result files) on S3-compatible object storage, when S3_BUCKET is set.

``core.settings`` makes this the default storage with the S3_* variables; without
them media stays on local disk under MEDIA_ROOT. The bucket stays private (no
ACL is ever set on an object): an object is read by the app itself (a job's
result file, streamed to its owner by ``services.downloads``) or by a browser
through a signed URL that ``url()`` gives and that expires after
``querystring_expire`` seconds (S3_URL_EXPIRE_SECONDS). Signed URLs point at the
bucket's own origin, never at the site's, so even a file a browser would run
could not run as a page or script of the site.

What each object is stored as (``get_object_parameters``) is fixed by its name,
never by the bytes or the type an uploader sent: WebP files (only
``users.avatars`` writes them) are ``image/webp`` shown inline, and everything
else is ``application/octet-stream`` as an attachment, so a signed URL to it
downloads rather than renders.
"""

from __future__ import annotations

from typing import Any

# Neither ships type information (no py.typed, no stubs in use).
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

from common.bucket_urls import addressing_style

INLINE_TYPES = {".webp": "image/webp"}
OTHER_TYPE = "application/octet-stream"
# SigV4 signed URLs may live at most seven days.
MAX_URL_EXPIRE_SECONDS = 7 * 24 * 3600


class MediaStorage(S3Storage):  # type: ignore[misc]
    """A private bucket, SigV4 signed URLs, and a stored type chosen by the name alone."""

    querystring_auth = True
    default_acl = None
    signature_version = "s3v4"
    file_overwrite = True  # every name is random (avatar_path, job_result_path)
    querystring_expire = 300

    def __init__(self, **options: Any) -> None:
        # As common.bucket_urls addresses the bucket, so the site's policy allows its host.
        options.setdefault("addressing_style", addressing_style(options.get("endpoint_url")))
        super().__init__(**options)
        if not 1 <= int(self.querystring_expire) <= MAX_URL_EXPIRE_SECONDS:
            raise ValueError(
                f"querystring_expire must be 1 to {MAX_URL_EXPIRE_SECONDS} seconds, "
                f"not {self.querystring_expire}."
            )

    def get_object_parameters(self, name: str) -> dict[str, str]:
        params: dict[str, str] = dict(super().get_object_parameters(name))
        suffix = name[name.rfind(".") :].lower() if "." in name else ""
        inline_type = INLINE_TYPES.get(suffix)
        if inline_type is not None:
            params["ContentType"] = inline_type
            params["ContentDisposition"] = "inline"
        else:
            params["ContentType"] = OTHER_TYPE
            params["ContentDisposition"] = "attachment"
        return params

    def get_modified_time(self, name: str) -> Any:
        """As S3Storage's, but a missing object is ``FileNotFoundError`` as on local disk."""
        try:
            return super().get_modified_time(name)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from error
            raise
