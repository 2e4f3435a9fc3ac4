"""The email in real headless Chromium at desktop (600 px) and phone (375 px) widths: no horizontal scroll on
the phone, images scale to the viewport, and screenshots to look at (var/screenshots/)."""

import pytest

from newsletter.placeholders import PersonalValues
from newsletter.services.composing import issue_preview
from tests.factories import issue_with_articles

pytestmark = [pytest.mark.django_db, pytest.mark.browser]


@pytest.fixture
def email_html():
    issue = issue_with_articles(3)
    return issue_preview(issue, PersonalValues("https://n.example/u/t/", "https://n.example/p/t/", "Reader")).html


def load(page, html: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.set_content(html, wait_until="load")


def measures(page) -> dict:
    return page.evaluate(
        """() => ({
            scrollWidth: document.scrollingElement.scrollWidth,
            images: Array.from(document.images).map(i => ({w: i.getBoundingClientRect().width, ok: i.naturalWidth})),
            headings: document.querySelectorAll('h2').length,
        })"""
    )


@pytest.mark.parametrize("width", [600, 375])
def test_email_fits_the_viewport_and_images_scale(page, email_html, width, screenshot_dir):
    load(page, email_html, width)
    m = measures(page)
    assert m["scrollWidth"] <= width, f"horizontal scroll at {width}px: {m['scrollWidth']}"
    assert m["headings"] == 3
    assert len(m["images"]) == 3 and all(i["ok"] for i in m["images"])
    assert all(0 < i["w"] <= width for i in m["images"]), m["images"]
    page.screenshot(path=str(screenshot_dir / f"email-{width}.png"), full_page=True)


def test_email_follows_dark_mode(page, email_html, screenshot_dir):
    page.emulate_media(color_scheme="dark")
    load(page, email_html, 375)
    colors = page.evaluate(
        """() => ({
            card: getComputedStyle(document.querySelector('.mh-card')).backgroundColor,
            text: getComputedStyle(document.querySelector('.mh-card h2')).color,
        })"""
    )
    assert colors["card"] == "rgb(29, 29, 29)"
    assert colors["text"] == "rgb(236, 236, 236)"
    page.screenshot(path=str(screenshot_dir / "email-375-dark.png"), full_page=False)
