"""schemathesis against the OpenAPI document, in-process through the WSGI application: generated input (valid
and invalid) never gets a 500, and every answer matches the document (status, content type, headers, body).

A bounded number of examples per operation keeps it under a minute; the token used may do everything, so every
operation's code runs rather than stopping at 403."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ArticleFactory, IssueFactory, subscribers_bulk

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Loaded once at collection, through the WSGI app (pytest-django has configured Django by then).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def token(db, newsletter, admin_api, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "API_RATE_PER_TOKEN": "100000/m"}
    # Something to find, so generated ids and filters sometimes hit real rows.
    ArticleFactory.create_batch(3)
    IssueFactory(newsletter=newsletter)
    subscribers_bulk(newsletter, 3)
    # As Django's test client does: a request ending must not close the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield admin_api.token
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers_and_never_a_500(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
