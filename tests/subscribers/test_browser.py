"""A reader's whole journey in headless Chromium at phone width, with the real confirmation email delivered by a
real Celery worker to a real SMTP server: signup → email → confirm → preferences → unsubscribe."""

import re

import pytest

from subscribers import links
from subscribers.models import ConsentEvent, Subscriber
from tests.factories import NewsletterFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PHONE = {"width": 375, "height": 812}


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.signup_queued  # the real path: the worker runs the queued signup, then sends its email
def test_signup_confirm_preferences_unsubscribe_on_a_phone(
    page, live_server, smtp_server, celery_worker, screenshot_dir, wait_for
):
    newsletter = NewsletterFactory(name="Daily Brief", slug="daily-brief", description="The day's news at 7am.")
    NewsletterFactory(name="Weekend Read", slug="weekend")
    celery_worker(
        queues="priority",
        env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": smtp_server.port, "SITE_URL": live_server.url},
    )
    page.set_viewport_size(PHONE)

    # Signup: the consent box starts unticked; forgetting it explains what to do.
    page.goto(f"{live_server.url}/subscribe/daily-brief/")
    page.screenshot(path=screenshot_dir / "subscribers-1-signup.png", full_page=True)
    assert fits_the_phone(page)
    assert not page.get_by_role("checkbox").is_checked()
    page.get_by_label("Email address").fill("reader@example.com")
    page.get_by_label("Name (optional)").fill("Rea Der")
    page.get_by_role("button", name="Subscribe").click()
    assert page.get_by_text("Please tick the box to agree").is_visible()
    page.screenshot(path=screenshot_dir / "subscribers-2-signup-error.png", full_page=True)
    page.get_by_label(re.compile("I agree to receive Daily Brief")).check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    page.screenshot(path=screenshot_dir / "subscribers-3-check-inbox.png", full_page=True)

    # The worker sends the real email to the SMTP server.
    (received,) = wait_for(lambda: smtp_server.to("reader@example.com"), timeout=60, what="the confirmation email")
    text = received.message.get_body(("plain",)).get_content()
    confirm_link = re.search(r"http\S+/confirm/\S+/", text).group(0)
    assert confirm_link.startswith(live_server.url)

    # Following the link confirms nothing; pressing the button does.
    page.goto(confirm_link)
    page.screenshot(path=screenshot_dir / "subscribers-4-confirm.png", full_page=True)
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="You're subscribed").wait_for()
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE

    # Preferences: add the weekend newsletter and change the name.
    page.get_by_role("link", name="Manage your preferences").click()
    page.get_by_role("heading", name="Your preferences").wait_for()
    assert page.get_by_label("Daily Brief").is_checked() and not page.get_by_label("Weekend Read").is_checked()
    page.get_by_label("Weekend Read").check()
    page.get_by_label("Name (optional)").fill("Rea")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Your preferences are saved.").wait_for()
    page.screenshot(path=screenshot_dir / "subscribers-5-preferences.png", full_page=True)
    assert fits_the_phone(page)
    subscriber = Subscriber.objects.get()
    assert subscriber.name == "Rea"
    assert set(subscriber.subscriptions.filter(status="active").values_list("newsletter__slug", flat=True)) == {
        "daily-brief",
        "weekend",
    }

    # Unsubscribe from the Daily Brief with the link every issue carries.
    page.goto(links.unsubscribe_url(subscriber.token, newsletter.slug))
    page.screenshot(path=screenshot_dir / "subscribers-6-unsubscribe.png", full_page=True)
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    page.screenshot(path=screenshot_dir / "subscribers-7-unsubscribed.png", full_page=True)
    states = dict(subscriber.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {"daily-brief": "unsubscribed", "weekend": "active"}
    kinds = list(ConsentEvent.objects.filter(subscriber=subscriber).order_by("id").values_list("kind", flat=True))
    assert kinds == ["subscribe", "confirm", "preferences", "unsubscribe"]
