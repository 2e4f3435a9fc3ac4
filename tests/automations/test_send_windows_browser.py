"""The signup page fills in the reader's time zone from the browser (Intl), in headless Chromium. (Chromium names
some zones by their older aliases, e.g. Asia/Katmandu; zoneinfo knows those too, so they are kept as given.)"""

import re

import pytest

from subscribers.models import Subscriber
from tests.factories import NewsletterFactory

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_the_signup_page_records_the_browsers_time_zone(browser, live_server, purge_queues):
    NewsletterFactory(name="Daily Brief", slug="daily-brief")
    context = browser.new_context(timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/subscribe/daily-brief/")
        assert page.input_value("#id_time_zone") == "Asia/Tokyo"
        page.get_by_label("Email address").fill("reader@example.com")
        page.get_by_label(re.compile("I agree to receive Daily Brief")).check()
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()
    finally:
        context.close()
        purge_queues()
    assert Subscriber.objects.get(email="reader@example.com").time_zone == "Asia/Tokyo"
