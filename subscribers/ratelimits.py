"""Rate limits for the public pages, per client IP and per address (or per link), on django-ratelimit and the
cache (Redis when REDIS_URL is set, so every web process shares the counts).

Rates may be overridden with RATE_LIMITS (newsletter/conf.py), e.g. {"signup_ip": "30/h", ...}. Behind a proxy set
RATELIMIT_IP_META_KEY so the client's address, not the proxy's, is counted.
"""

from django_ratelimit.core import is_ratelimited

from newsletter.conf import app_settings

DEFAULT_RATES = {
    # Signup sends email, so it is the tightest: per client, and per address whoever asks.
    "signup_ip": "30/h",
    "signup_address": "10/h",
    # Pages reached from an email link (confirm, unsubscribe, preferences, privacy).
    "link_ip": "300/h",
    "link_token": "30/h",
    # Each export request sends an email.
    "export_token": "3/h",
}


def rate(name: str) -> str:
    return app_settings.RATE_LIMITS.get(name, DEFAULT_RATES[name])


def over_limit(request, group: str, checks: dict[str, str]) -> bool:
    """Count this request against each limit in `checks` ({rate name: key}); True if any is exceeded.

    A key is "ip" or a string identifying the address/link (already normalised). Every limit is counted, so a
    client cannot spread one burst across them."""
    limited = False
    for rate_name, key in checks.items():
        key_fn = "ip" if key == "ip" else (lambda _group, _request, value=key: value)
        limited |= is_ratelimited(
            request, group=f"{group}:{rate_name}", key=key_fn, rate=rate(rate_name), method="POST", increment=True
        )
    return limited
