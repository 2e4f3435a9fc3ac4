"""Fixture messages for the inbound tests: bounces and reports written from each MTA's and provider's documented
format (tests/subscribers/inbound/*.eml), plus those recorded from real MTAs (see tests/subscribers/inbound/README.md).
Placeholders: {{VERP}} the delivery's bounce address, {{RCPT}} the reader, {{MSGID}} the issue message's id,
{{UNIQUE}} something unique per use, {{RCPT_LOCAL}} the reader's local part."""

import uuid
from pathlib import Path

FIXTURES = Path(__file__).parent / "inbound"

BOUNCE_DOMAIN = "bounces.example.org"
FBL_ADDRESS = "fbl@example.org"
UNSUBSCRIBE_ADDRESS = "unsubscribe@example.org"


def inbound_settings(settings) -> None:
    settings.MASTHEAD = {
        **settings.MASTHEAD,
        "BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "BOUNCE_LOCAL_PART": "bounces",
        "INBOUND_ADDRESSES": [FBL_ADDRESS],
        "INBOUND_RATE_PER_MINUTE": 0,
        "UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_ADDRESS,
    }


def fixture_bytes(name: str, verp: str, recipient: str, message_id: str = "<issue.1@example.org>") -> bytes:
    text = (FIXTURES / name).read_text()
    for key, value in {
        "{{VERP}}": verp,
        "{{RCPT}}": recipient,
        "{{MSGID}}": message_id,
        "{{UNIQUE}}": uuid.uuid4().hex,
        "{{RCPT_LOCAL}}": recipient.partition("@")[0],
    }.items():
        text = text.replace(key, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
