"""An editor's morning in real Chromium: write an article in the rich text editor, paste formatted text from Word,
upload its picture, compose an issue with two sections by searching from the issue page, preview it at phone width,
pass the checklist and send; the email that arrives carries the 600 px rendition with its alt text."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from newsletter import delivery
from newsletter.models import Article, Issue
from tests.factories import ArticleFactory, NewsletterFactory, picture_bytes, subscribers_bulk

pytestmark = [pytest.mark.browser]

WORD_PASTE = (Path(__file__).parent / "data" / "pasted_word.html").read_text()
DOCS_PASTE = (Path(__file__).parent / "data" / "pasted_gdocs.html").read_text()
PASSWORD = "pw-for-the-test"


def log_in(page, live_server, next_url: str) -> None:
    get_user_model().objects.create_superuser("editor", "editor@news.example.org", PASSWORD)
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "editor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def paste_html(page, selector: str, html: str) -> None:
    """A paste as the browser delivers it from the clipboard: a paste event carrying text/html."""
    page.eval_on_selector(
        selector,
        """(element, html) => {
            element.focus();
            const data = new DataTransfer();
            data.setData("text/html", html);
            data.setData("text/plain", html.replace(/<[^>]+>/g, ""));
            element.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        html,
    )


def test_editor_writes_uploads_composes_previews_and_sends(
    page, live_server, transactional_db, media_root, smtp_server, screenshot_dir, drain
):
    newsletter = NewsletterFactory(slug="daily-brief")
    subscribers_bulk(newsletter, 1)
    ArticleFactory(headline="Emergency waits fall again", section="Health", image_url="", image_alt="")
    log_in(page, live_server, "/admin/newsletter/article/add/")

    # --- write the article in the editor ------------------------------------------------------------------------
    page.fill("#id_headline", "Council passes the harbour budget")
    page.fill("#id_dek", "A narrow vote after a long night.")
    page.fill("#id_section", "City hall")
    page.fill("#id_canonical_url", "https://harbourcity.example/news/harbour-budget")
    body = ".prose-editor:has(#id_body_html) .tiptap"
    expect(page.locator(body)).to_be_visible()
    page.click(body)
    page.keyboard.type("Typed in the editor. ")
    page.keyboard.press("Control+b")
    page.keyboard.type("Bold words")
    page.keyboard.press("Control+b")
    page.keyboard.press("Enter")
    paste_html(page, body, WORD_PASTE)
    expect(page.locator(body).locator("ol li")).to_have_count(2)
    expect(page.locator(body).locator("ul li")).to_have_count(2)
    commentary = ".prose-editor:has(#id_commentary_html) .tiptap"
    paste_html(page, commentary, DOCS_PASTE)
    expect(page.locator(commentary).locator("strong")).to_have_text("nine to six")
    page.set_input_files(
        "#id_image_upload", {"name": "quay.png", "mimeType": "image/png", "buffer": picture_bytes(2000, 1000, "PNG")}
    )
    page.fill("#id_image_alt", "Councillors leaving the chamber at dawn")
    page.screenshot(path=str(screenshot_dir / "editor-article-form.png"), full_page=True)
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_be_visible()

    article = Article.objects.get(headline="Council passes the harbour budget")
    assert "<strong>Bold words</strong>" in article.body_html
    assert "<ul><li><p>Two new ferry routes</p></li><li><p>A review of bus routes</p></li></ul>" in article.body_html
    assert "<ol><li><p>First vote</p></li><li><p>Second vote</p></li></ol>" in article.body_html
    assert not re.search(r"mso|class=|style=|·", article.body_html)
    # Google Docs: its bold and italic spans kept, its all-bold wrapper not.
    assert "The vote was <strong>nine to six</strong>, after an <em>eight-hour</em> debate." in article.commentary_html
    assert "<b>" not in article.commentary_html and "style=" not in article.commentary_html
    assert article.image.width == 2000 and article.image.email_600.name.endswith("-600.jpg")

    # --- compose an issue with two sections, adding both articles by search ----------------------------------------
    issue = Issue.objects.create(newsletter=newsletter, subject="Wednesday: budget and waits", intro="Good morning.")
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/change/")
    for query, heading in (("harbour budget", "City hall"), ("emergency waits", "Health")):
        page.fill("#mh-article-q", query)
        result = page.get_by_test_id("article-results").locator("li")
        expect(result).to_have_count(1)
        expect(result.locator("input[name=section]")).to_have_value(heading)
        result.get_by_test_id("add-article").click()
        expect(page.locator(".messagelist")).to_contain_text(f"under “{heading}”")
    assert [(i.section, i.article.headline) for i in issue.items.order_by("position")] == [
        ("City hall", "Council passes the harbour budget"),
        ("Health", "Emergency waits fall again"),
    ]

    # --- preview at phone width -------------------------------------------------------------------------------------
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/preview/html/")
    image = page.locator(f"img[src$='{article.image.email_600.name}']")
    expect(image).to_have_attribute("alt", "Councillors leaving the chamber at dawn")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") == 600
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert image.evaluate("img => img.getBoundingClientRect().width") <= 375
    for heading in ("City hall", "Health"):
        expect(page.locator("h2", has_text=heading)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "editor-issue-375.png"), full_page=True)

    # --- the checklist passes, send ---------------------------------------------------------------------------------
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/send/")
    for key in ("alt_text", "links", "postal_address", "size"):
        expect(page.get_by_test_id(f"check-{key}")).to_have_attribute("data-ok", "true")
    page.get_by_test_id("send-now").click()
    expect(page.get_by_test_id("issue-status")).to_have_text("Sending")
    delivery.deliveries_materialise(issue.pk)  # what the worker's first task does
    drain(issue)

    assert len(smtp_server.messages) == 1
    # The sender folds long lines at spaces (an attribute's included): compare with whitespace collapsed.
    html = " ".join(smtp_server.messages[0].message.get_body(("html",)).get_content().split())
    sent = re.search(r'<img [^>]*src="([^"]+-600\.jpg)"[^>]*>', html)
    assert sent and 'alt="Councillors leaving the chamber at dawn"' in sent.group(0)
    assert sent.group(1) == f"{live_server.url}/media/{article.image.email_600.name}"
    assert f"{live_server.url}/media/{article.image.email_1200.name} 2x" in html
    # The URL in the email serves the 600 px JPEG.
    response = page.request.get(sent.group(1))
    assert response.ok and response.headers["content-type"] == "image/jpeg"
