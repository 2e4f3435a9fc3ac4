"""The send progress page in real Chromium: an editor with the send permission watches the counts and the bar follow
the delivery rows (changed here, as workers would), and the page switches to the finished state by itself."""

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from playwright.sync_api import expect

from newsletter import delivery
from newsletter.models import Delivery
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = [pytest.mark.browser]
POLL_WAIT_MS = 15_000  # the page polls every 2 s


def sender() -> User:
    user = User.objects.create_user("desk", "desk@news.example.org", "pw-for-the-test", is_staff=True)
    codenames = ["view_issue", "change_issue", "send_issue"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="newsletter", codename__in=codenames))
    return user


def test_progress_page_follows_the_deliveries_and_shows_the_end(
    page, live_server, transactional_db, screenshot_dir, start
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 20)
    start(issue)  # sending, 20 pending deliveries; no worker runs, the test plays its part
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    sender()

    page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/issue/{issue.pk}/progress/")
    page.fill("#id_username", "desk")
    page.fill("#id_password", "pw-for-the-test")
    page.click("input[type=submit]")
    expect(page.get_by_test_id("issue-status")).to_have_text("Sending")
    expect(page.locator("#mh-done")).to_have_text("0")
    expect(page.locator("#mh-total")).to_have_text("20")
    expect(page.get_by_test_id("count-pending")).to_have_text("20")
    expect(page.get_by_test_id("pause")).to_be_visible()

    now = timezone.now()
    Delivery.objects.filter(id__in=ids[:8]).update(status=Delivery.Status.SENT, sent_at=now, message_id="<x>")
    Delivery.objects.filter(id__in=ids[8:10]).update(status=Delivery.Status.SENDING)
    expect(page.locator("#mh-done")).to_have_text("8", timeout=POLL_WAIT_MS)
    expect(page.get_by_test_id("count-sent")).to_have_text("8")
    expect(page.get_by_test_id("count-sending")).to_have_text("2")
    expect(page.get_by_test_id("count-pending")).to_have_text("10")
    expect(page.locator("#mh-percent")).to_have_text("40.0")
    assert page.eval_on_selector("#mh-bar", "bar => bar.value") == 40
    page.screenshot(path=str(screenshot_dir / "admin-send-progress-40.png"), full_page=True)

    Delivery.objects.filter(id__in=ids[8:18]).update(status=Delivery.Status.SENT, sent_at=now, message_id="<x>")
    Delivery.objects.filter(id__in=ids[18:]).update(status=Delivery.Status.FAILED, error_code="550")
    assert delivery.send_finish(issue.pk)
    # The status changed: the page reloads itself with the buttons of the new state.
    expect(page.get_by_test_id("issue-status")).to_have_text("Sent", timeout=POLL_WAIT_MS)
    expect(page.locator("#mh-percent")).to_have_text("100.0")
    expect(page.get_by_test_id("count-failed")).to_have_text("2")
    expect(page.get_by_test_id("pause")).to_have_count(0)
    expect(page.get_by_test_id("resend")).to_contain_text("Resend to the 2 who did not get it")
    assert page.eval_on_selector("#mh-bar", "bar => bar.value") == 100
    page.screenshot(path=str(screenshot_dir / "admin-send-progress-done.png"), full_page=True)
