"""Errors of the fake API server as the real one writes them: ``Status`` bodies with a
reason, a code, and for 422 one cause per invalid field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import Resource
    from .validation import Cause

Obj = dict[str, Any]


class ApiError(Exception):
    """Answered as a ``Status`` body with this code."""

    def __init__(self, code: int, reason: str, message: str, *, details: Obj | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def body(self) -> Obj:
        return status_body(self.code, self.reason, self.message, details=self.details)


def status_body(code: int, reason: str, message: str, *, details: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                 "status": "Success" if code < 400 else "Failure", "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


def invalid(res: Resource, name: str, causes: list[Cause]) -> ApiError:
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}',
                    details={"name": name, "group": res.group, "kind": res.kind,
                             "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]})
