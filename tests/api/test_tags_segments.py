"""Tags on a subscriber and segments through the API: the same services and counts as the admin."""

import pytest

from newsletter.delivery import mailable_subscribers, segment_rules
from newsletter.models import Segment
from subscribers.models import SubscriberTag
from subscribers.services.tags import tag_for
from tests.factories import subscribers_bulk

from .conftest import assert_problem

pytestmark = pytest.mark.django_db


def test_tags_are_listed_added_and_removed_idempotently(admin_api, newsletter):
    reader = subscribers_bulk(newsletter, 1)[0]
    path = f"/subscribers/{reader.pk}/tags"
    assert admin_api.call("GET", path).json() == {"tags": [], "changed": 0}

    added = admin_api.call("POST", path, {"tags": ["Local", "  sports ", "local"]})
    assert added.status_code == 200
    assert added.json() == {"tags": ["Local", "sports"], "changed": 2}  # one tag per name, whatever the case
    assert admin_api.call("POST", path, {"tags": ["SPORTS"]}).json()["changed"] == 0
    assert admin_api.call("GET", f"/subscribers/{reader.pk}").json()["tags"] == ["Local", "sports"]

    removed = admin_api.call("DELETE", f"{path}?tag=LOCAL")
    assert removed.json() == {"tags": ["sports"], "changed": 1}
    assert admin_api.call("DELETE", f"{path}?tag=local").json()["changed"] == 0
    assert SubscriberTag.objects.filter(subscriber=reader).count() == 1

    assert_problem(admin_api.call("POST", path, {"tags": ["   "]}), 422, field="tags")
    assert_problem(admin_api.call("POST", path, {"tags": []}), 422)
    assert_problem(admin_api.call("POST", "/subscribers/999999/tags", {"tags": ["x"]}), 404)


def test_tagging_needs_the_change_permission(token_for, newsletter):
    reader = subscribers_bulk(newsletter, 1)[0]
    viewer = token_for("viewer", "view_subscriber")
    assert viewer.call("GET", f"/subscribers/{reader.pk}/tags").status_code == 200
    assert_problem(viewer.call("POST", f"/subscribers/{reader.pk}/tags", {"tags": ["x"]}), 403)
    assert_problem(viewer.call("DELETE", f"/subscribers/{reader.pk}/tags?tag=x"), 403)
    assert_problem(viewer.call("GET", "/segments/"), 403)


def test_segments_are_listed_with_the_admins_recipient_count(admin_api, newsletter):
    readers = subscribers_bulk(newsletter, 5)
    local = tag_for("local")
    SubscriberTag.objects.bulk_create([SubscriberTag(subscriber=r, tag=local) for r in readers[:3]])
    segment = Segment.objects.create(newsletter=newsletter, name="Locals", languages=["en"])
    segment.tags_any.add(local)
    expected = mailable_subscribers(newsletter.pk, segment_rules(segment)).count()
    assert expected == 3

    listed = admin_api.call("GET", f"/segments/?newsletter={newsletter.slug}").json()
    assert [(s["name"], s["recipients"], s["tags_any"], s["languages"]) for s in listed] == [
        ("Locals", 3, ["local"], ["en"])
    ]
    assert admin_api.call("GET", "/segments/?newsletter=other").json() == []
    one = admin_api.call("GET", f"/segments/{segment.pk}").json()
    assert one["newsletter"] == newsletter.slug and one["recipients"] == 3
    # Tagging through the API changes the count the next read gives.
    admin_api.call("POST", f"/subscribers/{readers[4].pk}/tags", {"tags": ["Local"]})
    assert admin_api.call("GET", f"/segments/{segment.pk}").json()["recipients"] == 4
    assert_problem(admin_api.call("GET", "/segments/999999"), 404)


def test_a_signup_through_the_api_may_give_the_readers_time_zone(admin_api, newsletter):
    body = {"email": "ada@example.com", "newsletter": newsletter.slug, "consent_text": "yes"}
    created = admin_api.call("POST", "/subscribers/", {**body, "time_zone": "Asia/Tokyo"})
    assert created.status_code == 202 and created.json()["subscriber"]["time_zone"] == "Asia/Tokyo"
    assert_problem(admin_api.call("POST", "/subscribers/", {**body, "time_zone": "Tokyo"}), 422, field="time_zone")
