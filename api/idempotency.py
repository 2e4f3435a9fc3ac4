"""`Idempotency-Key` on create operations: a CMS retrying a call (a timeout, a crash between request and answer)
gets the first call's answer again instead of a second article, issue or signup.

The key is recorded in the create's own transaction, so the key exists exactly when the creation committed; a
concurrent retry waits on the key's unique index until the first commits, then replays its answer. A key reused
with a different request is a 422; keys are remembered for API_IDEMPOTENCY_HOURS.
"""

import functools
import hashlib
import json
from datetime import timedelta
from typing import Annotated

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from ninja import Header

from api.errors import ApiProblem
from api.models import IdempotencyKey
from newsletter.conf import app_settings

HEADER = "Idempotency-Key"
# Documents the header on an operation (the decorator reads it from the request itself).
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="A unique value per logical create (e.g. a UUID); a retry with the same key and body replays "
        "the first answer instead of creating again.",
    ),
]


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(record.response, status=record.status_code, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(schema):
    """Decorate a create view returning a ninja Status: with an Idempotency-Key the answer, serialised with
    `schema`, is stored with the key and replayed for a retry."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            key = request.headers.get(HEADER)
            if key is None:
                return view(request, *args, **kwargs)
            fingerprint = _fingerprint(request)
            window = timedelta(hours=app_settings.API_IDEMPOTENCY_HOURS)
            with transaction.atomic():
                IdempotencyKey.objects.filter(
                    user=request.auth, key=key, created_at__lt=timezone.now() - window
                ).delete()
                try:
                    with transaction.atomic():
                        record = IdempotencyKey.objects.create(user=request.auth, key=key, fingerprint=fingerprint)
                except IntegrityError:
                    record = IdempotencyKey.objects.get(user=request.auth, key=key)
                    if record.fingerprint != fingerprint:
                        raise ApiProblem(
                            422,
                            f"The {HEADER} {key!r} was already used for a different request; use a new key for a "
                            "new request.",
                            kind="idempotency-key-reused",
                        ) from None
                    if record.status_code is None:
                        raise ApiProblem(409, "A request with this key is still being processed.") from None
                    return _replay(record)
                result = view(request, *args, **kwargs)  # a ninja Status
                status = result.status_code
                body = json.dumps(schema.model_validate(result.value, from_attributes=True).model_dump(mode="json"))
                record.status_code, record.response = status, body
                record.save(update_fields=["status_code", "response"])
            return HttpResponse(body, status=status, content_type="application/json")

        return wrapped

    return decorate
