"""CSV export of subscribers, safe to open in a spreadsheet."""

import csv
from collections.abc import Iterable, Iterator

from subscribers.models import Subscriber

# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HEADER = ["email", "name", "status", "source", "newsletters", "created_at", "confirmed_at"]


def csv_safe(value) -> str:
    """The cell's text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def subscribers_csv(subscribers: Iterable[Subscriber]) -> Iterator[str]:
    """Yield the CSV text line by line (for a streaming response): header, then one row per subscriber."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for s in subscribers:
        slugs = " ".join(sorted(sub.newsletter.slug for sub in s.subscriptions.all() if sub.status == "active"))
        row = [s.email, s.name, s.status, s.source, slugs, s.created_at.isoformat(), s.confirmed_at or ""]
        yield writer.writerow([csv_safe(v) for v in row])


def subscribers_for_export(queryset):
    return queryset.prefetch_related("subscriptions__newsletter").order_by("pk")
