"""The issue admin in real Chromium: dragging an article row renumbers positions, and saving keeps that order."""

import pytest
from django.contrib.auth import get_user_model

from tests.factories import issue_with_articles

pytestmark = [pytest.mark.browser]


def test_drag_and_drop_reorders_the_issue(page, live_server, transactional_db, screenshot_dir):
    issue = issue_with_articles(3)
    before = [i.article.headline for i in issue.items.order_by("position").select_related("article")]
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-the-test")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/issue/{issue.pk}/change/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-for-the-test")
    page.click("input[type=submit]")
    page.wait_for_selector("#items-group")
    assert page.locator("#items-group .mh-handle").count() == 3

    page.drag_and_drop("#items-2", "#items-0", target_position={"x": 5, "y": 2})
    positions = page.eval_on_selector_all(
        "#items-group tbody tr.form-row:not(.empty-form)",
        "rows => rows.map(r => [r.id, r.querySelector('td.field-position input').value])",
    )
    assert positions == [["items-2", "1"], ["items-0", "2"], ["items-1", "3"]]
    page.screenshot(path=str(screenshot_dir / "admin-issue-reorder.png"), full_page=True)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    after = [i.article.headline for i in issue.items.order_by("position").select_related("article")]
    assert after == [before[2], before[0], before[1]]
