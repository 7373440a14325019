"""Errors that say whether a retry can help.

Every failure the plane raises is either permanent (bad input: a retry gives the same answer,
so event endpoints answer 4xx and the broker dead-letters it) or transient (a dependency is
down or busy: event endpoints answer 5xx/429 and the broker retries with backoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

RETRY_AFTER_SECONDS: Final = 5
"""What a 503 tells a client (and Knative's broker, which also backs off) to wait before a retry."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, at a field path such as ``spec.resources.gpus``."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class JobplaneError(Exception):
    """Base class. ``status`` is the HTTP status a handler answers; ``code`` a stable name."""

    status: int = 500
    code: str = "internal"
    retryable: bool = False

    def __init__(self, message: str, *, details: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Problem] = list(details or [])

    def to_body(self) -> dict[str, Any]:
        """The API's error shape: ``{"error": {"code", "message", "details"}}``."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "details": [d.to_dict() for d in self.details],
            }
        }


class PermanentError(JobplaneError):
    """The input is wrong; retrying the same request cannot help (4xx)."""

    status = 400
    code = "invalid"


class TransientError(JobplaneError):
    """A dependency failed in a way that may pass; retry with backoff (5xx)."""

    status = 503
    code = "unavailable"
    retryable = True


class ValidationError(PermanentError):
    """Every problem found in one input, each with its field path, raised once."""

    code = "invalid"

    def __init__(self, problems: list[Problem], *, what: str = "input") -> None:
        summary = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"invalid {what}: {summary}{more}", details=problems)
        self.problems = list(problems)


class NotFoundError(PermanentError):
    status = 404
    code = "not_found"


class ForbiddenError(PermanentError):
    status = 403
    code = "forbidden"


class ConflictError(PermanentError):
    """The request conflicts with the current state (e.g. a spec id that exists)."""

    status = 409
    code = "conflict"


class PreconditionFailedError(JobplaneError):
    """A compare-and-swap lost the race: the object's generation moved. Re-read and retry."""

    status = 412
    code = "precondition_failed"
    retryable = True


class UnavailableError(TransientError):
    """A store or API server did not answer in time or answered 5xx/429."""


def short(text: str | bytes, limit: int = 300) -> str:
    """Cut a remote response body short for messages and logs."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PayloadTooLargeError(PermanentError):
    """The request body is over the door's size limit (413); nothing of it was kept."""

    status = 413
    code = "too_large"


class UnsupportedMediaTypeError(PermanentError):
    """The body's content type is not one this door reads (415)."""

    status = 415
    code = "unsupported_media_type"
