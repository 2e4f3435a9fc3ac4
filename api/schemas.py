"""Types shared by the API's schemas: text the database can store, and opaque cursors."""

from typing import Annotated

from django.core import signing
from pydantic import AfterValidator, Field

from api.errors import field_problem


def _storable(value: str) -> str:
    """PostgreSQL stores neither NUL characters nor lone surrogates: refuse them as bad input, not a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


def Text(max_length: int | None = None, **kwargs):  # noqa: N802 (a type factory reads like a type)
    return Annotated[str, Field(max_length=max_length, **kwargs), AfterValidator(_storable)]


Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_storable)]
Slug = Annotated[str, Field(pattern=r"^[-a-zA-Z0-9_]{1,50}$")]
ExternalId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$", description="The CMS's own id for the article.")
]
Id = Annotated[int, Field(ge=1, le=2**53)]
Limit = Annotated[int, Field(ge=1, le=500)]

_CURSOR_SALT = "api.cursor"


def cursor_dump(last_id: int) -> str:
    return signing.dumps(last_id, salt=_CURSOR_SALT, compress=True)


def cursor_load(cursor: str | None) -> int:
    """The id a page starts after (0 for the first page). A tampered or foreign cursor is a 422 on `cursor`."""
    if not cursor:
        return 0
    try:
        value = signing.loads(cursor, salt=_CURSOR_SALT)
    except signing.BadSignature:
        value = None
    if not isinstance(value, int) or value < 0:
        raise field_problem("cursor", "is not a cursor this API gave out; start again without one", "query")
    return value
