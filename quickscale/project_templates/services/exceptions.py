"""Errors raised by the service framework.

``BaseService.run`` raises these (or ``credits.exceptions.InsufficientCredits``
when the user cannot pay); the web views and the API turn each into one
message or one HTTP status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.models import ServiceUsage


class ServiceError(Exception):
    """Root of every error the service framework raises."""


class UnknownService(ServiceError, LookupError):
    """Raised when no service class is registered under a name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"There is no service named {name!r}. List them on the services page.")


class ServiceUnavailable(ServiceError):
    """Raised by ``run`` when the service has no configuration row or is switched off."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"The service {name!r} is not available. Choose another service.")


class ServiceInputError(ServiceError, ValueError):
    """Raised by ``validate_input`` when the input is unusable; nothing is charged.

    ``details`` maps each field name to its messages, for forms and the API.
    """

    def __init__(self, message: str, *, details: dict[str, list[str]] | None = None) -> None:
        self.message = message
        self.details = details or {}
        super().__init__(message)

    @classmethod
    def for_field(cls, field: str, message: str) -> ServiceInputError:
        """Build the error of one field."""
        return cls(message, details={field: [message]})


class ServiceFailed(ServiceError):
    """Raised by ``run`` when the service itself raised: the charge was reversed.

    ``usage`` is the failed ``ServiceUsage`` row; the original error is the cause.
    """

    def __init__(self, name: str, usage: ServiceUsage) -> None:
        self.name = name
        self.usage = usage
        super().__init__(
            f"The service {name!r} failed and no credits were charged. Try again later."
        )
