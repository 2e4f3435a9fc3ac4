"""make_token writes Django's signing.dumps format itself (it runs twice per recipient of every issue): the same
token, byte for byte, at the same second; read back by signing.loads and read_token; old tokens still verify."""

import time
import uuid

import pytest
from django.core import signing

from subscribers import tokens
from subscribers.tokens import BadToken, Purpose, make_token, read_token

SUBSCRIBER = "6f1c1a52-8f0b-4a39-9e39-2b9b0a0c7d11"
# Made by signing.dumps before the fast path existed (test SECRET_KEY, 2026-11-25): links in old emails keep working.
OLD_SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
OLD_UNSUBSCRIBE = (
    "WyI2ZjFjMWE1Mi04ZjBiLTRhMzktOWUzOS0yYjliMGEwYzdkMTEiLCJkYWlseS1icmllZiJd:1xWD5P:"
    "oHwWXGlJL149j0cOUF26lTW54Q3FDUwbyn_NTYoK41o"
)


@pytest.fixture
def frozen_time(monkeypatch):
    """One second for both signers: TimestampSigner and tokens read the same time.time()."""
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    return now


def reference(purpose: Purpose, payload: list[str]) -> str:
    return signing.dumps(payload, salt=tokens._salt(purpose), compress=False)


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize(
    "newsletter",
    ["", "daily-brief", 'odd "slug" \\ with é and \n'],  # the last takes json.dumps' escaping path
    ids=["no-newsletter", "slug", "needs-escaping"],
)
def test_fast_tokens_equal_signing_dumps_and_read_back(frozen_time, purpose, newsletter):
    subscriber = uuid.uuid4()
    token = make_token(purpose, subscriber, newsletter)
    payload = [str(subscriber), newsletter] if newsletter else [str(subscriber)]
    assert token == reference(purpose, payload)
    assert signing.loads(token, salt=tokens._salt(purpose)) == payload
    data = read_token(purpose, token, max_age=None)
    assert (data.subscriber_token, data.newsletter) == (str(subscriber), newsletter)


def test_tokens_made_before_still_verify(settings):
    settings.SECRET_KEY = OLD_SECRET_KEY
    data = read_token(Purpose.UNSUBSCRIBE, OLD_UNSUBSCRIBE)
    assert (data.subscriber_token, data.newsletter) == (SUBSCRIBER, "daily-brief")
    with pytest.raises(BadToken):
        read_token(Purpose.PREFERENCES, OLD_UNSUBSCRIBE)  # purpose-salted: not valid for another purpose


def test_a_new_secret_key_is_used_at_once_and_the_old_one_still_reads(frozen_time, settings):
    before = make_token(Purpose.UNSUBSCRIBE, SUBSCRIBER, "daily-brief")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key]
    after = make_token(Purpose.UNSUBSCRIBE, SUBSCRIBER, "daily-brief")
    assert after != before and after == reference(Purpose.UNSUBSCRIBE, [SUBSCRIBER, "daily-brief"])
    assert read_token(Purpose.UNSUBSCRIBE, before).subscriber_token == SUBSCRIBER  # via SECRET_KEY_FALLBACKS
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(BadToken):
        read_token(Purpose.UNSUBSCRIBE, before)


def test_a_forged_signature_or_expired_confirmation_is_refused(frozen_time, monkeypatch):
    token = make_token(Purpose.CONFIRM, SUBSCRIBER, "daily-brief")
    value, signature = token.rsplit(":", 1)
    with pytest.raises(BadToken):
        read_token(Purpose.CONFIRM, f"{value}:{signature[::-1]}")
    monkeypatch.setattr(time, "time", lambda: frozen_time + 8 * 86400)
    with pytest.raises(BadToken) as caught:
        read_token(Purpose.CONFIRM, token)
    assert caught.value.expired
