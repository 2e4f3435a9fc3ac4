"""Behind trusted proxies the client's address comes from X-Forwarded-For; from anyone else the header is ignored.
Both the signup rate limit and the consent ledger use it."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from config.proxies import client_address, proxies_check, trusted_proxies
from subscribers.models import ConsentEvent

PROXY = "10.0.0.5"


def signup(client, newsletter, email: str, peer: str, forwarded_for: str | None = None):
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    data = {"email": email, "name": "", "consent": "on", "website": ""}
    return client.post(reverse("subscribers:signup", args=[newsletter.slug]), data, **headers)


def ledger_ip(email: str) -> str:
    return ConsentEvent.objects.get(subscriber__email=email).ip_address


def with_proxies(settings, value: str) -> None:
    settings.MASTHEAD = {**settings.MASTHEAD, "TRUSTED_PROXIES": value, "CONSENT_IP_MODE": "full"}


def test_behind_a_trusted_proxy_each_reader_has_their_own_address_and_limit(client, newsletter, settings, on_commit):
    with_proxies(settings, "10.0.0.0/8")
    with on_commit(execute=False):
        for n in range(35):  # above signup_ip's 30/h, spread over 35 readers behind the one proxy
            response = signup(client, newsletter, f"reader{n}@example.com", PROXY, f"198.51.100.{n + 1}")
            assert response.status_code == 302, n
    assert ledger_ip("reader0@example.com") == "198.51.100.1"
    assert ledger_ip("reader34@example.com") == "198.51.100.35"


def test_a_forged_header_from_an_untrusted_peer_is_ignored(client, newsletter, settings, on_commit):
    with_proxies(settings, "10.0.0.0/8")
    with on_commit(execute=False):
        statuses = [
            signup(client, newsletter, f"reader{n}@example.com", "203.0.113.9", f"198.51.100.{n + 1}").status_code
            for n in range(31)
        ]
    assert statuses[:30] == [302] * 30 and statuses[30] == 429  # one client, one limit, whatever it claims
    assert ledger_ip("reader0@example.com") == "203.0.113.9"


def test_without_the_setting_the_header_is_never_believed(client, newsletter, settings, on_commit):
    with_proxies(settings, "")
    with on_commit(execute=False):
        signup(client, newsletter, "a@example.com", PROXY, "198.51.100.1")
    assert ledger_ip("a@example.com") == PROXY


def test_a_proxy_count_takes_the_address_the_outermost_proxy_saw(client, newsletter, settings, on_commit):
    with_proxies(settings, "1")
    with on_commit(execute=False):
        # The client forged an entry; the proxy appended the address it really saw.
        signup(client, newsletter, "a@example.com", "127.0.0.1", "192.0.2.66, 198.51.100.1")
    assert ledger_ip("a@example.com") == "198.51.100.1"


@pytest.mark.parametrize(
    ("setting", "peer", "header", "client"),
    [
        ("10.0.0.0/8", "10.0.0.5", "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # two of our proxies
        ("10.0.0.0/8", "10.0.0.5", "192.0.2.66, 198.51.100.1", "198.51.100.1"),  # a forged entry on the left
        ("10.0.0.0/8", "10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.0/8", "10.0.0.5", "not-an-ip, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.0/8", "10.0.0.5", "198.51.100.1, garbage", "10.0.0.5"),  # unreadable: stop at the peer
        ("10.0.0.0/8", "10.0.0.5", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.0/8", "10.0.0.5", "198.51.100.1:5000", "198.51.100.1"),
        ("10.0.0.0/8,2001:db8:ffff::/48", "2001:db8:ffff::1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.0/8", "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not our proxy
        ("2", "127.0.0.1", "192.0.2.66, 198.51.100.1, 10.0.0.7", "198.51.100.1"),
        ("2", "127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("", "10.0.0.5", "198.51.100.1", "10.0.0.5"),
    ],
)
def test_client_address(setting, peer, header, client):
    assert client_address(peer, header, trusted_proxies(setting)) == client


def test_a_bad_setting_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES: 'proxy.example.org'"):
        trusted_proxies("10.0.0.0/8, proxy.example.org")


def test_https_claims_from_an_untrusted_peer_are_dropped(client, settings, db):
    """With BEHIND_PROXY, X-Forwarded-Proto says the request came over https; only our proxy may say so."""
    with_proxies(settings, "10.0.0.0/8")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    direct = client.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    assert direct.status_code == 301 and direct["Location"].startswith("https://")  # not taken for https
    proxied = client.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert proxied.status_code == 200


def test_deploy_check_warns_behind_a_proxy_without_trusted_proxies(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    with_proxies(settings, "")
    assert [w.id for w in proxies_check()] == ["masthead.W001"]
    with_proxies(settings, "127.0.0.1")
    assert proxies_check() == []
