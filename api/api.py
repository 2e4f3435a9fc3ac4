"""The REST API at /api/v1/: one NinjaAPI with a router per resource, bearer-token auth on every operation,
problem details for every error, the OpenAPI document at /api/v1/openapi.json and docs at /api/v1/docs."""

from django.http import HttpRequest
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from api.auth import TokenAuth
from api.errors import problem_openapi, problem_response, problems_install
from api.routers import articles, issues, newsletters, segments, subscribers, suppressions

DESCRIPTION = """Drive Masthead from a CMS or a script: push articles, compose and send issues, add readers.

Authenticate with `Authorization: Bearer <token>` (tokens are created in the admin, under *API tokens*). A token
acts as its user and can do only what that user's permissions allow. Errors are RFC 9457 problem details
(`application/problem+json`). Creates accept an `Idempotency-Key` header.
"""


class MastheadAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        return problem_openapi(super().get_openapi_schema(*args, **kwargs))


api = MastheadAPI(
    title="Masthead API",
    version="1",
    description=DESCRIPTION,
    auth=TokenAuth(),
    urls_namespace="api-v1",
)
problems_install(api)
api.add_router("/newsletters", newsletters.router)
api.add_router("/articles", articles.router)
api.add_router("/issues", issues.router)
api.add_router("/subscribers", subscribers.router)
api.add_router("/suppressions", suppressions.router)
api.add_router("/segments", segments.router)


@csrf_exempt  # an API client has no CSRF token; this view changes nothing
def not_found(request: HttpRequest, rest: str = ""):
    """Unknown paths under /api/v1/ answer a problem too, not the site's HTML 404 page."""
    detail = f"No API resource at {request.path}."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
        except Resolver404:
            pass
        else:
            detail += f" Did you mean {request.path}/ (with the trailing slash)?"
    return problem_response(request, 404, detail, kind="not-found")
