"""RFC 9457 problem details: the one error shape of every Murmur service."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error to answer as problem+json; raise it from handlers or domain adapters."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        *,
        title: str | None = None,
        type_: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or str(status))
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.errors = errors
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        return body


def not_found(detail: str) -> Problem:
    """404 for a missing resource."""
    return Problem(404, detail)


def unavailable(detail: str, retry_after: int = 1) -> Problem:
    """503 with Retry-After, for a dependency that is down and has no fallback."""
    return Problem(503, detail, headers={"Retry-After": str(retry_after)})


def validation_failed(errors: list[dict[str, Any]], detail: str = "The request is invalid.") -> Problem:
    """422 with per-field errors: [{"field": "username", "message": "..."}]."""
    return Problem(422, detail, errors=errors)
