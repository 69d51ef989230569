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


class ServiceNotConfigured(ServiceError):
    """Raised when a service cannot run until the operator sets something up; nothing is charged.

    ``message`` says what to set (an LLM service without its provider's API key
    names the variable). The service page shows it; the API answers 503.
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(message)


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


# --------------------------------------------------------------------------- jobs


class JobError(ServiceError):
    """Root of the errors of background jobs (``services/jobs.py``)."""


class JobNotFound(JobError, LookupError):
    """Raised when a job does not exist or belongs to someone else (the views answer 404)."""

    def __init__(self, job_id: object) -> None:
        self.job_id = job_id
        super().__init__(f"There is no job {job_id}. See your jobs on the jobs page.")


class JobAlreadyFinished(JobError):
    """Raised when cancelling a job that has already ended (the views answer 409)."""

    def __init__(self, job_id: object, state: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"The job {job_id} has already ended ({state}); nothing to cancel.")


class JobNotSupported(JobError):
    """Raised by ``enqueue_job`` when a service's cleaned inputs are not plain JSON.

    A job's inputs wait in the database for a worker, so they must be JSON
    (text, numbers, lists, objects); a service that takes an upload runs directly.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"The service {name!r} cannot run in the background: its inputs are not plain "
            "JSON. Call it directly."
        )


class TooManyActiveJobs(JobError):
    """Raised by ``enqueue_job`` when the user already has ``limit`` jobs queued or running.

    Nothing is held or queued; the web page shows the message, the API answers 429.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} jobs queued or running, the most allowed at once. "
            "Wait for one to finish, or cancel one, then try again."
        )


class ServiceRunsAsJob(ServiceError):
    """Raised by ``BaseService.run`` for a long-running service: enqueue a job instead.

    The web page and the API send such calls to ``services.jobs.enqueue_job``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"The service {name!r} runs in the background: start it as a job "
            "(services.jobs.enqueue_job) and follow it on the jobs page."
        )


class JobInterrupted(JobError):
    """Raised by a job's ``progress`` report when the job must stop now.

    A service lets it propagate (do not catch it in a broad ``except``); the
    runner then records the outcome of the subclass raised.
    """


class JobCancelled(JobInterrupted):
    """The owner cancelled the job: it stops and is charged for what it processed."""

    def __init__(self) -> None:
        super().__init__("The job was cancelled.")


class JobTimedOut(JobInterrupted):
    """The job ran past its deadline (its hold's expiry): it fails, uncharged."""

    def __init__(self) -> None:
        super().__init__("The job ran past its time limit and was stopped; not charged.")


class JobLeaseLost(JobInterrupted):
    """This run lost its lease (it was swept and taken again): it stops and changes nothing."""

    def __init__(self) -> None:
        super().__init__("The job's lease lapsed; another run owns it now.")
