"""CSV import: stream the file, validate, dedupe case-insensitively, never re-add a suppressed, erased or
unsubscribed address, record the source, and report every rejected row with its line number and reason.

Rows are handled in batches (one transaction, a few queries and bulk inserts each), so 100,000 rows take
seconds, not minutes. A batch that has been written stays written if a later row breaks the file: the report
says where reading stopped, so nothing is lost silently.
"""

import csv
import io
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from subscribers.models import (
    ConsentEvent,
    Subscriber,
    SubscriberTag,
    Subscription,
    Suppression,
    Tag,
    time_zone_clean,
)

from .addresses import InvalidAddress, address_normalise, name_clean
from .suppression import suppressions_by_address

BATCH_SIZE = 2000
# An import that wrote at least this many rows analyses the tables at the end (a few hundred ms at a million rows).
ANALYZE_AFTER_ROWS = 1000
EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "mail", "address"}
NAME_HEADERS = {"name", "full name", "full_name", "display name"}
TAG_HEADERS = {"tags", "tag", "labels"}
TIME_ZONE_HEADERS = {"time_zone", "timezone", "time zone", "tz"}
TAG_SEPARATORS = re.compile(r"[;,|]")


@dataclass(frozen=True)
class RejectedRow:
    line: int
    value: str
    reason: str


@dataclass
class ImportReport:
    imported: int = 0  # new subscribers, active and subscribed
    added: int = 0  # known subscribers newly subscribed to the newsletter
    unchanged: int = 0  # already subscribed
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.imported + self.added + self.unchanged

    def reject(self, line: int, value: str, reason: str) -> None:
        self.rejected.append(RejectedRow(line, value[:254], reason))


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    name: str
    tags: tuple[str, ...] = ()
    time_zone: str = ""


SUPPRESSION_REASONS = {
    Suppression.Reason.HARD_BOUNCE: "suppressed: the address hard-bounced",
    Suppression.Reason.SOFT_BOUNCES: "suppressed: the address bounced repeatedly",
    Suppression.Reason.COMPLAINT: "suppressed: a spam complaint came from this address",
    Suppression.Reason.ERASED: "erased on the person's request: only they can sign up again",
    Suppression.Reason.MANUAL: "suppressed by an operator",
}


Columns = tuple[int, int | None, int | None, int | None]


def _columns(header: list[str]) -> Columns | None:
    """Find the email, name, tags and time zone columns of a header row; None when the row is not a header."""
    names = [h.strip().lower() for h in header]
    email = next((i for i, h in enumerate(names) if h in EMAIL_HEADERS), None)
    if email is None:
        return None
    name = next((i for i, h in enumerate(names) if h in NAME_HEADERS), None)
    tags = next((i for i, h in enumerate(names) if h in TAG_HEADERS), None)
    time_zone = next((i for i, h in enumerate(names) if h in TIME_ZONE_HEADERS), None)
    return email, name, tags, time_zone


def tags_parse(raw: str) -> tuple[str, ...]:
    """Tag names from a cell ("local; sports, vip"), trimmed, de-duplicated case-insensitively, in order."""
    seen: dict[str, str] = {}
    for name in TAG_SEPARATORS.split(raw):
        name = " ".join(name.split())[:64]
        if name:
            seen.setdefault(name.lower(), name)
    return tuple(seen.values())


def _text_lines(stream: TextIO | BinaryIO, report: ImportReport) -> Iterator[str]:
    """The file's lines as text. Bytes are decoded line by line (UTF-8, BOM allowed), so a line that is not UTF-8
    is reported with its number and the rest of the file still imports. (A newline byte never occurs inside a
    UTF-8 multi-byte sequence, so splitting before decoding is safe.)"""
    if isinstance(stream, io.TextIOBase):
        yield from stream
        return
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            report.reject(number, "", "not UTF-8 text: save the file as UTF-8 (CSV UTF-8) and import this row again")
            line = "\n"  # keeps the CSV reader's line count aligned; a blank line is not a row
        yield line.removeprefix("\ufeff") if number == 1 else line


def _rows(stream: TextIO | BinaryIO, report: ImportReport) -> Iterator[_Row]:
    """Yield the data rows with their (first) line numbers; malformed lines go straight to the report."""
    reader = csv.reader(_text_lines(stream, report))
    columns: Columns | None = None
    last_line = 0
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.reject(start, "", f"unreadable CSV: {exc}")
            if reader.line_num == last_line:  # the reader can't get past it
                return
            last_line = reader.line_num
            continue
        except UnicodeDecodeError:  # a text stream opened by the caller
            report.reject(start, "", f"the file is not UTF-8 text from line {start} on; nothing after it was read")
            return
        last_line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line holds no row
        if columns is None:
            columns = _columns(cells)
            if columns is not None:
                continue  # the header
            columns = (0, 1, None, None)  # no header: email, then (optionally) name
        email_col, name_col, tags_col, zone_col = columns
        email = cells[email_col] if len(cells) > email_col else ""
        name = cells[name_col] if name_col is not None and len(cells) > name_col else ""
        tags = tags_parse(cells[tags_col]) if tags_col is not None and len(cells) > tags_col else ()
        zone = cells[zone_col].strip() if zone_col is not None and len(cells) > zone_col else ""
        yield _Row(start, email, name, tags, zone)


def subscribers_import(
    stream: TextIO | BinaryIO,
    newsletter,
    *,
    source_detail: str = "",
    consent_text: str = "",
    policy_version: str = "",
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import the CSV `stream` (a binary file, read line by line, or a text stream) into `newsletter` and return
    the report.

    The file has a header naming an `email` column (and optionally `name`, `tags` and `time_zone`), or no header
    with the address first and the name second. Imported people become active subscribers (the operator attests
    their consent, recorded in the ledger as `consent_text` with source "import"). Known people are subscribed if
    they are not yet, unless they unsubscribed (from everything, or from this newsletter): an import never
    overrides an opt-out. An unknown time zone rejects its row (the rest of the file still imports).
    """
    report = ImportReport()
    seen: dict[str, int] = {}
    batch: list[_Row] = []
    for row in _rows(stream, report):
        try:
            email = address_normalise(row.email)
        except InvalidAddress as exc:
            report.reject(row.line, row.email, f"invalid address: {exc}")
            continue
        key = email.lower()
        if key in seen:
            report.reject(row.line, row.email, f"duplicate of line {seen[key]}")
            continue
        if row.time_zone and not time_zone_clean(row.time_zone):
            report.reject(row.line, row.email, f"time zone {row.time_zone!r} is not an IANA name like Europe/Madrid")
            continue
        seen[key] = row.line
        batch.append(_Row(row.line, email, name_clean(row.name), row.tags, row.time_zone))
        if len(batch) >= batch_size:
            _import_batch(batch, newsletter, report, source_detail, consent_text, policy_version)
            batch = []
    if batch:
        _import_batch(batch, newsletter, report, source_detail, consent_text, policy_version)
    if report.imported + report.added >= ANALYZE_AFTER_ROWS:
        tables_analyse()
    report.rejected.sort(key=lambda r: r.line)
    return report


def tables_analyse() -> None:
    """Refresh the planner's statistics of the tables an import grows. A send is often pressed right after an
    import, long before autovacuum's next look; on statistics that still describe the list before the import,
    PostgreSQL plans for a handful of rows where there are now a hundred thousand."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Subscriber._meta.db_table}, {Subscription._meta.db_table}")


def _by_lower_email(emails: Iterable[str]) -> dict[str, tuple[int, str]]:
    """{lowercased address: (id, status)} of the known subscribers among `emails`, via the lower(email) index."""
    rows = Subscriber.objects.alias(email_lower=Lower("email")).filter(email_lower__in=list(emails))
    return {email.lower(): (pk, status) for pk, email, status in rows.values_list("id", "email", "status")}


def _insert(model, columns: list[str], rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """INSERT many rows in few statements. The ORM's bulk_create spends most of an import preparing each field of
    each object; here values are prepared once per batch (timestamps) or are plain strings and ints.

    PostgreSQL: COPY into a temporary table, then one INSERT … SELECT (ON CONFLICT DO NOTHING when asked). COPY
    streams the rows with no SQL to build or parse; a multi-row VALUES statement of 30,000 parameters cost more
    in psycopg's client-side query parsing than the database spent inserting. SQLite, in-process, gets
    executemany (ON CONFLICT DO NOTHING works there too, since 3.24)."""
    if not rows:
        return
    qn = connection.ops.quote_name
    table, names = qn(model._meta.db_table), ", ".join(qn(c) for c in columns)
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}){tail}", rows)
            return
        # Same column types as the target, no constraints; dropped below (an outer transaction may hold many batches).
        staging = qn(f"import_{model._meta.db_table}")
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} AS SELECT {names} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging}{tail}")
        cursor.execute(f"DROP TABLE {staging}")


@transaction.atomic
def _import_batch(
    batch: list[_Row], newsletter, report: ImportReport, source_detail: str, consent_text: str, policy_version: str
) -> None:
    # Under every key that may have made an entry: a key rotation never lets an erased address back in.
    suppressed = suppressions_by_address(r.email for r in batch)
    rows = []
    for row in batch:
        if row.email in suppressed:
            report.reject(row.line, row.email, SUPPRESSION_REASONS.get(suppressed[row.email], "suppressed"))
        else:
            rows.append(row)

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    token = Subscriber._meta.get_field("token")
    existing = _by_lower_email(r.email.lower() for r in rows)
    new = [r for r in rows if r.email.lower() not in existing]
    _insert(
        Subscriber,
        ["email", "name", "status", "token", "source", "language", "soft_bounces", "created_at", "updated_at"],
        [
            (
                r.email,
                r.name,
                Subscriber.Status.ACTIVE,
                token.get_db_prep_value(uuid.uuid4(), connection),
                "import",
                "",
                0,
                now,
                now,
            )
            for r in new
        ],  # fmt: skip
        ignore_conflicts=True,  # a concurrent signup may have added one meanwhile; it is picked up below
    )
    created = {r.email.lower() for r in new}
    subscribers = {**existing, **_by_lower_email(created)} if created else existing
    memberships = dict(
        Subscription.objects.filter(newsletter=newsletter, subscriber_id__in=[pk for pk, _ in subscribers.values()])
        .values_list("subscriber_id", "status")
    )  # fmt: skip

    subscriptions, confirmed, events, tagged = [], [], [], []
    for row in rows:
        found = subscribers.get(row.email.lower())
        if found is None:  # pragma: no cover - erased between the two queries
            report.reject(row.line, row.email, "removed while importing; import again")
            continue
        subscriber_id, status = found
        membership = memberships.get(subscriber_id)
        if status == Subscriber.Status.SUPPRESSED:
            report.reject(row.line, row.email, "suppressed: the address bounced or complained")
        elif status == Subscriber.Status.UNSUBSCRIBED and row.email.lower() not in created:
            report.reject(row.line, row.email, "unsubscribed earlier: only they can subscribe again")
        elif membership == Subscription.Status.UNSUBSCRIBED:
            report.reject(row.line, row.email, "unsubscribed from this newsletter earlier: not re-added")
        elif membership == Subscription.Status.ACTIVE:
            report.unchanged += 1
            tagged.append((subscriber_id, row.tags))
        else:
            tagged.append((subscriber_id, row.tags))
            if row.email.lower() in created:
                report.imported += 1
            else:
                report.added += 1
            if membership == Subscription.Status.PENDING:
                confirmed.append(subscriber_id)  # a signup never confirmed: the operator now attests consent
            else:
                subscriptions.append((subscriber_id, newsletter.pk, Subscription.Status.ACTIVE, now, now))
            detail = f"{source_detail} line {row.line}".strip()[:300]
            events.append(
                (subscriber_id, newsletter.pk, ConsentEvent.Kind.IMPORT, ConsentEvent.Source.IMPORT,
                 policy_version[:32], consent_text, "", "", detail, now)
            )  # fmt: skip
    _insert(Subscription, ["subscriber_id", "newsletter_id", "status", "created_at", "updated_at"], subscriptions, True)
    if confirmed:
        Subscription.objects.filter(newsletter=newsletter, subscriber_id__in=confirmed).update(
            status=Subscription.Status.ACTIVE, updated_at=timezone.now()
        )
    _insert(
        ConsentEvent,
        ["subscriber_id", "newsletter_id", "kind", "source", "policy_version", "consent_text", "ip_address",
         "user_agent", "detail", "created_at"],
        events,
    )  # fmt: skip
    _tag(tagged)
    accepted = {subscriber_id for subscriber_id, _ in tagged}
    zoned = [(subscribers.get(r.email.lower(), (0, ""))[0], r.time_zone) for r in rows if r.time_zone]
    _time_zones([(pk, zone) for pk, zone in zoned if pk in accepted])


def _time_zones(zoned: list[tuple[int, str]]) -> None:
    """Set the CSV's time zones on the accepted rows' subscribers, one UPDATE per zone."""
    by_zone: dict[str, list[int]] = {}
    for subscriber_id, zone in zoned:
        by_zone.setdefault(zone, []).append(subscriber_id)
    for zone, ids in by_zone.items():
        Subscriber.objects.filter(pk__in=ids).exclude(time_zone=zone).update(time_zone=zone)


def _tag(tagged: list[tuple[int, tuple[str, ...]]]) -> None:
    """Add the CSV's tags to the accepted rows' subscribers (tags are only ever added by an import, never removed)."""
    names: dict[str, str] = {}
    for _, tags in tagged:
        for name in tags:
            names.setdefault(name.lower(), name)  # the first spelling in the file names a new tag
    if not names:
        return
    _insert(Tag, ["name"], [(name,) for name in names.values()], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.alias(lower=Lower("name")).filter(lower__in=list(names)).annotate(
        key=Lower("name")).values_list("key", "id"))  # fmt: skip
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    _insert(
        SubscriberTag,
        ["subscriber_id", "tag_id", "created_at"],
        [(subscriber_id, tag_ids[name.lower()], now) for subscriber_id, tags in tagged for name in tags],
        ignore_conflicts=True,
    )
