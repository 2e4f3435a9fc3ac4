"""Admin: filters and search, read-only consent history, actions behind their own permissions, CSV import page,
formula-safe CSV export."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile

from subscribers.models import ConsentEvent, Subscriber, Suppression
from subscribers.services.exporting import csv_safe
from tests.factories import NewsletterFactory, SubscriberFactory, subscribed

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/subscribers/subscriber/"


def staff(*perms: str) -> User:
    user = User.objects.create_user(f"staff{User.objects.count()}", password="x", is_staff=True)
    for codename in ("view_subscriber", *perms):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def act(client, action: str, subscribers, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in subscribers], **extra}
    return client.post(CHANGELIST, data)


def test_changelist_filters_and_search(client, newsletter, admin_user):
    NewsletterFactory(slug="weekend")  # with one newsletter the admin shows (and applies) no newsletter filter
    subscribed(newsletter, email="ada@example.com", name="Ada")
    SubscriberFactory(email="bob@example.com", status=Subscriber.Status.PENDING, source="import")
    client.force_login(admin_user)
    page = client.get(CHANGELIST, {"q": "ada"}).content.decode()
    assert "ada@example.com" in page and "bob@example.com" not in page
    page = client.get(CHANGELIST, {"status": "pending"}).content.decode()
    assert "bob@example.com" in page and "ada@example.com" not in page
    page = client.get(CHANGELIST, {"subscriptions__newsletter__id__exact": newsletter.pk}).content.decode()
    assert "ada@example.com" in page and "bob@example.com" not in page
    page = client.get(CHANGELIST, {"source": "import"}).content.decode()
    assert "bob@example.com" in page and "ada@example.com" not in page
    assert client.get(CHANGELIST, {"created_at__gte": "2000-01-01 00:00:00+00:00"}).status_code == 200


def test_consent_history_is_read_only_everywhere(client, newsletter, admin_user):
    subscriber = subscribed(newsletter)
    event = ConsentEvent.objects.create(subscriber=subscriber, kind="subscribe", source="form", consent_text="yes")
    client.force_login(admin_user)  # even a superuser
    page = client.get(f"{CHANGELIST}{subscriber.pk}/change/").content.decode()
    assert "Consent history" in page and "consentevent_set-0-kind" not in page
    assert client.get(f"/admin/subscribers/consentevent/{event.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/subscribers/consentevent/{event.pk}/change/", {"kind": "erase"}).status_code == 403
    assert client.post(f"/admin/subscribers/consentevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/subscribers/consentevent/add/").status_code == 403
    event.refresh_from_db()
    assert event.kind == "subscribe"


@pytest.mark.parametrize(
    ("action", "perm"),
    [
        ("unsubscribe_selected", "suppress_subscriber"),
        ("suppress_selected", "suppress_subscriber"),
        ("export_selected", "export_subscriber"),
        ("erase_selected", "erase_subscriber"),
    ],
)
def test_each_action_needs_its_own_permission(client, newsletter, action, perm):
    subscriber = subscribed(newsletter)
    others = [p for p in ("suppress_subscriber", "export_subscriber", "erase_subscriber") if p != perm]
    client.force_login(staff(*others))
    response = act(client, action, [subscriber], confirm="yes")
    assert response.status_code in (200, 302) and response.get("Content-Type", "").startswith("text/html")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE and not ConsentEvent.objects.exists()

    client.force_login(staff(perm))
    response = act(client, action, [subscriber], confirm="yes")
    if action == "export_selected":
        assert response["Content-Type"] == "text/csv"
    elif action == "erase_selected":
        assert not Subscriber.objects.exists() and Suppression.objects.get().reason == "erased"
    else:
        subscriber.refresh_from_db()
        assert subscriber.status == {"unsubscribe_selected": "unsubscribed", "suppress_selected": "suppressed"}[action]
        assert ConsentEvent.objects.get().source == ConsentEvent.Source.ADMIN


def test_erase_action_asks_for_confirmation_first(client, newsletter, admin_user):
    subscriber = subscribed(newsletter, email="maybe@example.com")
    client.force_login(admin_user)
    response = act(client, "erase_selected", [subscriber])
    assert response.status_code == 200 and b"Yes, erase them" in response.content
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_csv_export_is_safe_against_formula_injection(client, newsletter, admin_user):
    evil = subscribed(newsletter, email="x@example.com", name='=HYPERLINK("http://evil","click")')
    plain = subscribed(newsletter, email="y@example.com", name="Plain, Name")
    client.force_login(admin_user)
    response = act(client, "export_selected", [evil, plain])
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_email = {r["email"]: r for r in rows}
    assert by_email["x@example.com"]["name"] == '\'=HYPERLINK("http://evil","click")'
    assert by_email["y@example.com"]["name"] == "Plain, Name"
    assert by_email["x@example.com"]["newsletters"] == newsletter.slug
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(value) == "'" + value
    assert csv_safe("ok") == "ok" and csv_safe(None) == ""


def test_import_page_requires_permission_and_post(client, newsletter):
    client.force_login(staff())
    assert client.get(f"{CHANGELIST}import/").status_code == 403
    upload = SimpleUploadedFile("list.csv", b"email\na@example.com\n")
    data = {"file": upload, "newsletter": newsletter.pk, "consent": "fair"}
    assert client.post(f"{CHANGELIST}import/run/", data).status_code == 403
    assert not Subscriber.objects.exists()
    client.force_login(staff("import_subscribers"))
    assert client.get(f"{CHANGELIST}import/run/").status_code == 405


def test_import_page_reports_rejected_rows_with_line_numbers(client, newsletter):
    client.force_login(staff("import_subscribers"))
    page = client.get(f"{CHANGELIST}import/")
    assert page.status_code == 200 and b'type="file"' in page.content
    upload = SimpleUploadedFile("list.csv", "email,name\na@example.com,Ä\nnope,B\na@example.com,C\n".encode())
    response = client.post(f"{CHANGELIST}import/run/", {"file": upload, "newsletter": newsletter.pk, "consent": "fair"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 new subscriber(s) imported" in html and "2 row(s) rejected" in html
    assert "<td>3</td><td>nope</td><td>invalid address" in html
    assert "<td>4</td><td>a@example.com</td><td>duplicate of line 2</td>" in html
    assert Subscriber.objects.get().name == "Ä"
    assert "admin upload list.csv" in ConsentEvent.objects.get().detail


def test_import_page_without_a_file_says_so(client, newsletter):
    client.force_login(staff("import_subscribers"))
    response = client.post(f"{CHANGELIST}import/run/", {"newsletter": newsletter.pk, "consent": "x"})
    assert response.status_code == 400 and b"This field is required" in response.content
