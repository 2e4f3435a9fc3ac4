"""CSV import: good rows in, every bad row reported with its line and reason, no opt-out or erasure undone."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression, email_hash
from subscribers.services.importing import subscribers_import
from subscribers.services.privacy import subscriber_erase
from subscribers.services.suppression import address_suppress
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory, subscribed

pytestmark = pytest.mark.django_db

BAD_FILE = """name,Email,notes
Ada,ada@example.com,fine
Bob,not-an-address,typo
Ada again,ADA@Example.com,duplicate
,  carol@example.org  ,padded

Dan,dan@example.com,
Eve,"eve@exa
mple.com",multi-line cell
Zed,zed@bounced.example,suppressed
Quinn,quit@example.com,unsubscribed
"""


def run(text: str, newsletter, **kwargs):
    return subscribers_import(io.StringIO(text, newline=""), newsletter, consent_text="signed up at the fair", **kwargs)


def test_import_with_bad_rows_reports_line_numbers_and_reasons(newsletter):
    address_suppress("Zed@bounced.example", Suppression.Reason.HARD_BOUNCE)
    SubscriberFactory(email="quit@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    report = run(BAD_FILE, newsletter, source_detail="file fair.csv")

    rejected = [(r.line, r.reason.split(":")[0]) for r in report.rejected]
    assert rejected == [
        (3, "invalid address"),
        (4, "duplicate of line 2"),
        (8, "invalid address"),  # a line break inside the address cell
        (10, "suppressed"),
        (11, "unsubscribed earlier"),
    ]
    assert "The email address is not valid" in report.rejected[0].reason or "@" in report.rejected[0].reason
    assert report.imported == 3 and report.added == report.unchanged == 0
    emails = set(Subscriber.objects.filter(source="import").values_list("email", flat=True))
    assert emails == {"ada@example.com", "carol@example.org", "dan@example.com"}
    assert Subscriber.objects.get(email="ada@example.com").status == Subscriber.Status.ACTIVE
    assert Subscription.objects.filter(newsletter=newsletter, status="active").count() == 3
    event = ConsentEvent.objects.get(subscriber__email="carol@example.org")
    assert event.kind == event.source == "import"
    assert event.consent_text == "signed up at the fair" and event.detail == "file fair.csv line 5"


def test_headerless_file_and_known_subscribers(newsletter):
    other = NewsletterFactory(slug="weekend")
    subscribed(newsletter, email="known@example.com")
    elsewhere = subscribed(other, email="other@example.com")
    left = SubscriberFactory(email="left@example.com")
    SubscriptionFactory(subscriber=left, newsletter=newsletter, status=Subscription.Status.UNSUBSCRIBED)
    SubscriptionFactory(subscriber=left, newsletter=other)
    report = run("Known@example.com,K\nother@example.com\nleft@example.com\nnew@example.com,New\n", newsletter)
    assert (report.imported, report.added, report.unchanged) == (1, 1, 1)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "unsubscribed from this newsletter earlier: not re-added")
    ]
    assert elsewhere.subscriptions.filter(newsletter=newsletter, status="active").exists()
    assert Subscriber.objects.get(email="new@example.com").name == "New"


def test_erasure_then_reimport_does_not_add_them_back(newsletter):
    person = subscribed(newsletter, email="gone@example.com")
    subscriber_erase(person)
    report = run("email\nGONE@example.com\n", newsletter)
    assert report.imported == 0
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "erased on the person's request: only they can sign up again")
    ]
    assert not Subscriber.objects.exists()
    assert Suppression.objects.get().email_hash == email_hash("gone@example.com")


def test_batches_and_dedupe_across_batches(newsletter):
    rows = "\n".join(f"user{i % 250}@example.com" for i in range(600))
    report = run("email\n" + rows, newsletter, batch_size=100)
    assert report.imported == 250 and len(report.rejected) == 350
    assert report.rejected[0].line == 252 and report.rejected[0].reason == "duplicate of line 2"
    assert Subscriber.objects.count() == 250


def test_not_utf8_stops_with_a_clear_message(newsletter, tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,name\nok@example.com,A\nx@example.com,Jos\xe9\n")
    call_command("import_subscribers", str(path), "--newsletter", newsletter.slug)
    out = capsys.readouterr()
    assert "line 3: '': not UTF-8 text" in out.err
    assert "1 imported" in out.out and "1 rejected" in out.out


def test_import_command(newsletter, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("email,name\na@example.com,A\nbroken\n", encoding="utf-8")
    call_command("import_subscribers", str(path), "--newsletter", newsletter.slug)
    out = capsys.readouterr()
    assert "1 imported" in out.out and "1 rejected" in out.out
    assert "line 3: 'broken': invalid address" in out.err
    with pytest.raises(CommandError, match="No newsletter with slug 'nope'"):
        call_command("import_subscribers", str(path), "--newsletter", "nope")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_subscribers", str(tmp_path / "missing.csv"), "--newsletter", newsletter.slug)


AWKWARD_ADDRESSES = [
    "Reader.One+tag@Example.COM",
    "x@EXAMPLE.com.",
    "Postmaster@Example.com",  # a case-insensitive mailbox name: email-validator lowercases it
    "a..b@example.com",
    ".a@example.com",
    "a@-example.com",
    "a@example",
    "a@localhost",
    "a@xn--bcher-kva.example",  # IDNA: normalised to Unicode by email-validator
    "a@bücher.example",
    "ñ@example.com",
    '"quoted@local"@example.com',
    "Name <a@example.com>",
    "a@[192.0.2.1]",
    "a@b@example.com",
    "@example.com",
    "a@",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "a@" + ("d" * 60 + ".") * 4 + "com",
    "a@example.com" + " ",
    "o'brien@example.ie",
]


@pytest.mark.parametrize("raw", AWKWARD_ADDRESSES)
def test_address_fast_path_agrees_with_email_validator(raw, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTPUTF8": True}  # every address email-validator accepts
    """address_normalise skips email-validator's full parse for plain addresses; it must never disagree."""
    from email_validator import EmailNotValidError, validate_email

    from subscribers.services.addresses import InvalidAddress, address_normalise

    try:
        expected = validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got = address_normalise(raw)
    except InvalidAddress:
        got = None
    assert got == expected


def test_a_bulk_import_leaves_the_planner_statistics_fresh(newsletter, require):
    """A send pressed right after an import plans on the list as it now is: the import analyses what it grew
    (pg_class.reltuples is what ANALYZE sets; autovacuum would not have come by yet)."""
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://…)")
    rows = "email\n" + "".join(f"bulk{n}@example.com\n" for n in range(1500))
    assert run(rows, newsletter).imported == 1500
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s)",
            [Subscriber._meta.db_table, Subscription._meta.db_table],
        )
        tuples = dict(cursor.fetchall())
    assert tuples == {Subscriber._meta.db_table: 1500, Subscription._meta.db_table: 1500}
