"""A job's result file, served to its owner only, as a download that cannot act as a page.

The web page (``services.views.job_download``) and the API (``GET
/api/jobs/{id}/file``) answer with the same response, built here. The file is
stored in the media storage (MEDIA_ROOT, or the S3_BUCKET bucket, where it is
an attachment of a generic type) in a folder nobody can guess and has no URL of its
own; the caller has checked that the job is the requester's before asking.
The answer is always an attachment (``Content-Disposition: attachment``), its
type comes from the name the service gave the file (never from its bytes,
which the service may have built from a user's text), ``nosniff`` stops a
browser from guessing another type, and a policy of ``default-src 'none'``
means that even a file opened as a page could load and run nothing.
"""

from __future__ import annotations

import mimetypes
import posixpath

from django.http import FileResponse

from services.models import Job

GENERIC_TYPE = "application/octet-stream"


def result_file_name(job: Job) -> str:
    """The name the owner's download gets: the name the service chose, without its folder."""
    return posixpath.basename(job.result_file.name or "")


def result_file_response(job: Job) -> FileResponse | None:
    """Return the attachment response of ``job``'s result file, or None when it has none.

    None too when the row names a file that is no longer stored (removed by
    hand, or a volume lost): the caller answers 404 rather than 500.
    """
    if not job.result_file:
        return None
    try:
        handle = job.result_file.open("rb")
    except FileNotFoundError:
        return None
    name = result_file_name(job)
    content_type = mimetypes.guess_type(name)[0] or GENERIC_TYPE
    response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    # A result is the owner's own data: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response
