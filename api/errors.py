"""Every API error as RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`,
`detail`, `instance`, and for bad input `errors`, one entry per field with where it is and what is wrong.

Installed on the NinjaAPI by `problems_install`: ninja's own validation, authentication and HTTP errors, Django's
404 and PermissionDenied, and anything unexpected (a 500 that is logged and says nothing internal).
"""

import json
import logging
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled, ValidationError

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The statuses every operation may answer with a problem; the OpenAPI document lists them on each operation.
PROBLEM_STATUSES = (400, 401, 403, 404, 409, 422, 429)


class FieldError(Schema):
    field: str  # e.g. "email", "articles.2.id"; "" for the body as a whole
    location: str  # body, query, path or header
    message: str


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised anywhere in an API view to answer with a problem. `kind` becomes the type URI."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str = "",
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors, self.headers = errors, headers or {}


def field_problem(field: str, message: str, location: str = "body") -> ApiProblem:
    """A 422 for one bad field (input that passed the schema but not a service's rules)."""
    return ApiProblem(
        422,
        f"{field}: {message}",
        kind="validation",
        errors=[{"field": field, "location": location, "message": message}],
    )


def problem_response(
    request: HttpRequest,
    status: int,
    detail: str,
    *,
    kind: str = "",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": f"urn:masthead:problem:{kind}" if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _location_and_field(loc: list) -> tuple[str, str]:
    """ninja's error locations look like ["body", "payload", "email"] or ["query", "limit"]: the first item is
    where, the argument name of a body model is noise to the caller."""
    parts = [str(p) for p in loc]
    if not parts:
        return "body", ""
    location = parts[0]
    rest = parts[2:] if location == "body" and len(parts) > 1 else parts[1:]
    return location, ".".join(rest)


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        location, field = _location_and_field(list(error.get("loc", [])))
        message = str(error.get("msg", "is not valid"))
        errors.append({"field": field, "location": location, "message": message})
    detail = "; ".join(f"{e['field'] or e['location']}: {e['message']}" for e in errors) or "The request is not valid."
    return problem_response(request, 422, detail, kind="validation", errors=errors)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    headers = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="masthead"'
        detail = "Send a valid, unrevoked API token as `Authorization: Bearer <token>`."
        return problem_response(request, 401, detail, kind="unauthenticated", headers=headers)
    if isinstance(exc, AuthorizationError):
        return problem_response(request, 403, str(exc), kind="forbidden")
    if isinstance(exc, Throttled):
        if exc.wait:
            headers["Retry-After"] = str(exc.wait)
        return problem_response(request, 429, "Too many requests.", kind="rate-limited", headers=headers)
    return problem_response(request, exc.status_code, str(exc))


def problems_install(api) -> None:
    api.add_exception_handler(ApiProblem, lambda request, exc: problem_response(
        request, exc.status, exc.detail, kind=exc.kind, errors=exc.errors, headers=exc.headers
    ))  # fmt: skip
    api.add_exception_handler(ValidationError, _validation)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(Http404, lambda request, exc: problem_response(
        request, 404, "No such resource.", kind="not-found"
    ))  # fmt: skip
    api.add_exception_handler(PermissionDenied, lambda request, exc: problem_response(
        request, 403, str(exc) or "Not allowed.", kind="forbidden"
    ))  # fmt: skip

    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("API error on %s %s", request.method, request.path)
        return problem_response(request, 500, "Something went wrong on our side; it has been logged.")

    api.add_exception_handler(Exception, unexpected)


def problem_openapi(schema: dict) -> dict:
    """Add the problem responses to every operation of an OpenAPI document, as `application/problem+json`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    definition = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in definition.pop("$defs", {}).items():
        components[name] = sub
    components["Problem"] = definition
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in PROBLEM_STATUSES:
                key = str(status)
                if key in responses and "content" in responses[key]:
                    responses[key]["content"] = {PROBLEM_CONTENT_TYPE: {"schema": ref}}
                elif key not in responses:
                    responses[key] = {
                        "description": HTTPStatus(status).phrase,
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": ref}},
                    }
    return schema
