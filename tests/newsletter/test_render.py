"""Rendering an issue in the newsroom's shape: one compile per issue, personal values as markers, a readable text
part, sanitised article HTML, and errors an editor can act on."""

from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
from django.db.models import F

from newsletter import placeholders
from newsletter.models import IssueArticle
from newsletter.placeholders import PersonalValues
from newsletter.services import rendering
from newsletter.services.composing import article_sanitize, issue_preview
from newsletter.services.rendering import RenderError, issue_freeze, issue_render, issue_rendered
from newsletter.services.sanitizing import html_sanitize, markdown_to_html
from subscribers import links, tokens
from subscribers.models import Subscriber, Subscription
from tests.factories import ArticleFactory, issue_with_articles

pytestmark = pytest.mark.django_db

GMAIL_CLIP_BYTES = 102 * 1024


def assert_in_order(haystack: str, needles: list[str]) -> None:
    positions = [haystack.index(n) for n in needles]  # ValueError names a missing one
    assert positions == sorted(positions), f"out of order: {needles}"


def ordered_parts(issue) -> list[str]:
    parts = []
    for item in issue.items.order_by("position"):
        a = item.article
        parts += [a.headline, *a.key_facts, a.bottom_line]
    return parts


def test_html_has_every_article_headline_key_facts_and_bottom_line_in_order():
    issue = issue_with_articles(4)
    rendered = issue_render(issue)
    assert_in_order(rendered.html, ordered_parts(issue))
    html = rendered.html
    assert rendered.subject == issue.subject
    for item in issue.items.all():
        a = item.article
        assert f'alt="{a.image_alt}"' in html
        assert a.dek in html and f"By {a.byline}" in html and a.canonical_url in html
    # the sample's section order within an article
    assert_in_order(html, ["Key facts", "The rest of the story", "Commentary", "The bottom line", "Read more"])


def test_text_part_has_the_same_content_in_order_and_reads_on_its_own():
    issue = issue_with_articles(3)
    text = issue_render(issue).text
    assert_in_order(text, ordered_parts(issue))
    first = issue.items.order_by("position").first().article
    assert f"  * {first.key_facts[0]}" in text  # a bullet list, not a tag soup
    assert f"Read more: {first.canonical_url}" in text  # links as URLs
    assert "<" not in text and "&amp;" not in text and "&#" not in text
    assert "KEY FACTS" in text and "THE BOTTOM LINE" in text


def test_text_part_turns_body_links_into_urls():
    issue = issue_with_articles(1)
    article = issue.articles.get()
    article.body_html = (
        '<p>See <a href="https://example.org/report?a=1&amp;b=2">the report</a>.</p><ul><li>one</li></ul>'
    )
    article.save()
    text = issue_render(issue).text
    assert "See the report (https://example.org/report?a=1&b=2)." in text
    assert "  * one" in text


def test_footer_and_personal_markers_appear_once_per_spot():
    issue = issue_with_articles(2)
    rendered = issue_render(issue)
    view_url = rendering.issue_view_url(issue)
    assert view_url.endswith(f"/archive/{issue.newsletter.slug}/{issue.public_id}/")
    for part in (rendered.html, rendered.text):
        assert "because you subscribed" in part
        assert issue.newsletter.postal_address in part
        assert view_url in part
        assert part.count(placeholders.UNSUBSCRIBE_URL) == 1
        assert part.count(placeholders.PREFERENCES_URL) == 1
        assert part.count(placeholders.NAME) == 1
    assert f'href="{placeholders.UNSUBSCRIBE_URL}"' in rendered.html
    assert f'href="{placeholders.PREFERENCES_URL}"' in rendered.html


def test_html_is_accessible_responsive_and_dark_mode_aware():
    html = issue_render(issue_with_articles(2)).html
    assert html.lower().startswith("<!doctype html>")
    assert '<html lang="en"' in html
    assert 'role="presentation"' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "prefers-color-scheme: dark" in html
    assert "@media only screen and (min-width:480px)" in html  # MJML's responsive columns
    assert "<h1" in html and "<h2" in html and "<h3" in html
    # mj-style inline="inline" is inlined by mrml (Gmail drops <style> in some contexts)
    assert '<h3 style="font-family: Helvetica, Arial, sans-serif;' in html


def test_ten_article_issue_stays_under_gmail_clipping(record_property):
    issue = issue_with_articles(10)
    rendered = issue_render(issue)
    size = len(rendered.html.encode())
    record_property("html_bytes_10_articles", size)
    record_property("text_bytes_10_articles", len(rendered.text.encode()))
    print(f"10-article issue: HTML {size} bytes, text {len(rendered.text.encode())} bytes")
    assert size < GMAIL_CLIP_BYTES


def test_substitution_escapes_personal_values_for_each_context():
    issue = issue_with_articles(1)
    values = PersonalValues(
        unsubscribe_url="https://news.example/u/a&b/",
        preferences_url='https://news.example/p/"x"/',
        name='Ann <b>"Bo"</b> & Co',
    )
    preview = issue_preview(issue, values)
    assert "Hi Ann &lt;b&gt;&quot;Bo&quot;&lt;/b&gt; &amp; Co," in preview.html
    assert 'href="https://news.example/u/a&amp;b/"' in preview.html
    assert 'href="https://news.example/p/&quot;x&quot;/"' in preview.html
    assert '<b>"Bo"</b>' not in preview.html
    assert 'Hi Ann <b>"Bo"</b> & Co,' in preview.text
    assert "Unsubscribe: https://news.example/u/a&b/" in preview.text
    for marker in placeholders.MARKERS:
        assert marker not in preview.html and marker not in preview.text


def test_sanitiser_strips_scripts_handlers_and_dangerous_urls():
    dirty = (
        '<p onclick="steal()">Hi<script>alert(1)</script><style>p{}</style>'
        '<a href="javascript:alert(1)">x</a><img src="https://e.org/i.png" onerror="alert(1)">'
        '<iframe src="https://evil.example"></iframe><a href="https://ok.example/">ok</a></p>'
    )
    clean = html_sanitize(dirty)
    for bad in ("script", "alert", "onclick", "onerror", "javascript:", "iframe", "<style"):
        assert bad not in clean
    assert '<a href="https://ok.example/" rel="noopener noreferrer">ok</a>' in clean
    assert '<img src="https://e.org/i.png">' in clean


def test_markdown_becomes_sanitised_html_below_the_email_outline():
    html = markdown_to_html("# Background\n\n* one\n* two\n\n[link](https://x.example) <script>x()</script>")
    assert "<h4>Background</h4>" in html
    assert "<li>one</li>" in html and 'href="https://x.example"' in html
    assert "script" not in html


def test_article_sanitize_cleans_before_storage_and_render_cleans_again():
    article = ArticleFactory.build(
        body_html='<p>ok</p><script>alert("x")</script>', commentary_html="<p onmouseover=x>c</p>"
    )
    article_sanitize(article)
    assert article.body_html == "<p>ok</p>" and article.commentary_html == "<p>c</p>"
    # A row written around the services (a shell, an old import) is still cleaned on its way into an email.
    issue = issue_with_articles(1)
    raw = issue.articles.get()
    raw.body_html = '<p>story</p><img src="x" onerror="alert(1)"><script>evil()</script>'
    raw.save()
    html = issue_render(issue).html
    assert "evil()" not in html and "onerror" not in html


def test_render_is_cached_until_an_input_changes(monkeypatch):
    compiles = []
    real = rendering.compile_mjml
    monkeypatch.setattr(rendering, "compile_mjml", lambda src: compiles.append(1) or real(src))
    issue = issue_with_articles(3)
    first = issue_render(issue)
    assert issue_render(issue) == first and len(compiles) == 1

    article = issue.items.order_by("position").first().article
    article.headline = "A corrected headline"
    article.save()
    assert "A corrected headline" in issue_render(issue).html and len(compiles) == 2

    IssueArticle.objects.filter(issue=issue).update(position=F("position") + 1)
    last = issue.items.order_by("-position").first()
    IssueArticle.objects.filter(pk=last.pk).update(position=0)  # reorder without touching the issue row
    html = issue_render(issue).html
    assert len(compiles) == 3
    assert html.index(last.article.headline) < html.index("A corrected headline")


def test_frozen_render_never_changes_when_articles_are_edited_later():
    issue = issue_with_articles(2)
    issue_freeze(issue)
    issue.save()
    frozen_html = issue.frozen_html
    article = issue.articles.first()
    article.headline = "Edited after sending"
    article.save()
    issue.refresh_from_db()
    assert issue_rendered(issue).html == frozen_html
    assert "Edited after sending" not in issue_rendered(issue).html


def assert_equal_but_for_line_wrapping(received: str, preview: str) -> None:
    """`received` is `preview` with, at most, line breaks put in for SMTP's line limit: a break in place of a
    space, or inserted between two tags. Anything else that differs fails, with where."""
    received = received.replace("\r\n", "\n")
    i = j = 0
    while i < len(received) and j < len(preview):
        if received[i] == preview[j] or received[i] == "\n" and preview[j] == " ":
            i, j = i + 1, j + 1
        elif received[i] == "\n" and preview[j - 1 : j + 1] == "><":
            i += 1
        else:
            raise AssertionError(
                f"differs at {j}: preview {preview[j - 60 : j + 60]!r}, sent {received[i - 60 : i + 60]!r}"
            )
    assert received[i:] == preview[j:]


@pytest.mark.django_db(transaction=True)
def test_preview_is_what_the_smtp_server_receives(smtp_server, monkeypatch, start, drain):
    """The editor's preview (of the draft, before sending) against the HTML part decoded from the bytes the SMTP
    server received, for the same reader. Click measurement off: it rewrites the sent links (tests/engagement)."""
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: 1_800_000_000))  # links signed alike
    issue = issue_with_articles(
        3,
        newsletter__name="Café Brief",
        newsletter__tracking_mode="off",
        intro="Good morning — «three» stories & more.",
    )
    reader = Subscriber.objects.create(email="ana@example.com", name="Ana <Ñ>", status=Subscriber.Status.ACTIVE)
    Subscription.objects.create(subscriber=reader, newsletter=issue.newsletter, status=Subscription.Status.ACTIVE)
    slug = issue.newsletter.slug
    values = PersonalValues(links.unsubscribe_url(reader.token, slug), links.preferences_url(reader.token), reader.name)
    preview = issue_preview(issue, values)
    assert not any(m in preview.html for m in placeholders.MARKERS) and "Ana &lt;Ñ&gt;" in preview.html

    start(issue)
    drain(issue)
    (received,) = smtp_server.messages
    message = message_from_bytes(received.data, policy=policy.default)
    assert message["Subject"] == preview.subject
    assert_equal_but_for_line_wrapping(message.get_body(("html",)).get_content(), preview.html)


def test_the_wrapping_allowance_is_only_line_breaks():
    assert_equal_but_for_line_wrapping("<p>a\nb</p>\n<p>c</p>", "<p>a b</p><p>c</p>")
    with pytest.raises(AssertionError, match="differs"):
        assert_equal_but_for_line_wrapping("<p>a\nb</p>", "<p>ab</p>")
    with pytest.raises(AssertionError):
        assert_equal_but_for_line_wrapping("<p>unsubscribe: x</p>", "<p>unsubscribe: y</p>")


def test_template_syntax_error_names_file_and_line(broken_layout):
    footer = broken_layout / "_footer.mjml"
    lines = footer.read_text().splitlines()
    lines.insert(4, "{% if newsletter.name %}unclosed")
    footer.write_text("\n".join(lines))
    issue = issue_with_articles(1, newsletter__template="broken")
    with pytest.raises(RenderError) as info:
        issue_render(issue)
    err = info.value
    assert err.source.endswith("email/broken/_footer.mjml")
    assert err.line == 5
    assert "Unclosed tag" in err.message or "endif" in err.message


def test_mjml_error_names_the_line_of_the_generated_mjml(broken_layout):
    header = broken_layout / "_header.mjml"
    header.write_text(
        header.read_text().replace("<mj-column>", "<mj-colum>", 1).replace("</mj-column>", "</mj-colum>", 1)
    )
    issue = issue_with_articles(1, newsletter__template="broken")
    with pytest.raises(RenderError) as info:
        issue_render(issue)
    err = info.value
    assert err.source == "MJML" and err.line and "<mj-colum> is not an MJML element" in err.message
    assert "<mj-colum>" in err.excerpt
    assert f"line {err.line}" in str(err)


def test_mjml_unclosed_element_is_reported_with_its_line(broken_layout):
    article = broken_layout / "_article.mjml"
    article.write_text(article.read_text().replace("</mj-section>", "", 1))
    issue = issue_with_articles(1, newsletter__template="broken")
    with pytest.raises(RenderError) as info:
        issue_render(issue)
    assert "<mj-section>" in info.value.message and info.value.line
