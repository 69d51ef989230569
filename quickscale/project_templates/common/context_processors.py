"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def project(request: HttpRequest) -> dict[str, str]:
    """Expose the project's name, read from PROJECT_NAME at run time."""
    return {"PROJECT_NAME": settings.PROJECT_NAME}
