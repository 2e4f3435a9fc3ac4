"""The MIME skeleton and per-recipient substitution: every header, each value escaped for its context."""

from urllib.parse import quote

import pytest

from newsletter.delivery.messages import Recipient, personalise, skeleton_build
from newsletter.services.rendering import issue_render
from subscribers.tokens import Purpose, read_token
from tests.factories import issue_to_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def skeleton(settings):
    settings.MAIL_DOMAIN = "news.example.org"
    settings.SITE_URL = "https://news.example.org"
    issue = issue_to_send()
    return issue, skeleton_build(issue, issue_render(issue))


def test_message_has_every_list_header_and_the_recipients_own_links(skeleton, parse):
    issue, sk = skeleton
    token = "6f1c1a52-8f0b-4a39-9e39-2b9b0a0c7d11"
    message = personalise(sk, Recipient(41, "ann@example.com", "Ann Example", token))
    mail = parse(message.data)
    assert mail["From"] == "The Daily Brief <brief@news.example.org>"
    assert mail["Reply-To"] == "The Daily Brief <desk@news.example.org>"
    assert mail["To"] == "Ann Example <ann@example.com>"
    assert mail["Subject"] == "Tuesday: the council votes"
    assert mail["Date"]
    assert mail["Message-ID"] == f"<{issue.public_id.hex}.41@news.example.org>"
    assert mail["List-Id"] == "Daily Brief <daily-brief.news.example.org>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click, mailto = [part.strip().strip("<>") for part in str(mail["List-Unsubscribe"]).split(",")]
    assert one_click.startswith("https://news.example.org/u/") and one_click.endswith("/one-click/")
    assert mailto.startswith("mailto:unsubscribe@news.example.org?subject=unsubscribe%20")
    signed = one_click.split("/u/", 1)[1].split("/", 1)[0]
    data = read_token(Purpose.UNSUBSCRIBE, signed)
    assert mailto.rsplit("%20", 1)[1] == quote(signed, safe="")  # the mailto carries the same token, URL-quoted
    assert (data.subscriber_token, data.newsletter) == (token, "daily-brief")
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    unsubscribe = one_click.removesuffix("one-click/")
    assert f'href="{unsubscribe}"' in html and f"Unsubscribe: {unsubscribe}" in text
    assert "/preferences/" in html and "%%MH_" not in html + text and "\x00" not in html + text
    assert b"Content-Transfer-Encoding: 8bit" in message.data
    assert all(len(line) <= 998 for line in message.data.split(b"\r\n"))


def test_header_injection_and_html_in_names_are_neutralised(skeleton, parse):
    _, sk = skeleton
    name = 'Eve"\r\nBcc: victim@example.net <b>&'
    message = personalise(sk, Recipient(7, "eve@example.com", name, "6f1c1a52-8f0b-4a39-9e39-2b9b0a0c7d11"))
    mail = parse(message.data)
    assert mail["Bcc"] is None
    assert "eve@example.com" in str(mail["To"]) and "\n" not in str(mail["To"])
    headers = message.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers


def test_each_recipient_gets_a_distinct_message_id_and_link(skeleton, parse):
    _, sk = skeleton
    a = personalise(sk, Recipient(1, "a@example.com", "", "11111111-1111-4111-8111-111111111111"))
    b = personalise(sk, Recipient(2, "b@example.com", "", "22222222-2222-4222-8222-222222222222"))
    assert a.message_id != b.message_id and a.links.one_click_url != b.links.one_click_url
    assert parse(a.data)["To"] == "a@example.com"


def test_non_ascii_subject_and_name_are_encoded(skeleton, settings, parse):
    issue, _ = skeleton
    issue.subject = "Zürich: Café société"
    sk = skeleton_build(issue, issue_render(issue))
    message = personalise(sk, Recipient(3, "z@example.com", "Zoë Ünal", "33333333-3333-4333-8333-333333333333"))
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    mail = parse(message.data)
    assert mail["Subject"] == "Zürich: Café société"
    assert mail["To"].addresses[0].display_name == "Zoë Ünal"
