"""Rate limits for the public pages, per client IP and per address (or per link), on django-ratelimit and the
cache (Redis when REDIS_URL is set, so every web process shares the counts).

Rates may be overridden from the environment: RATE_LIMITS=signup_ip=60/h,link_ip=600/h (newsletter/conf.py;
`manage.py check` refuses unknown names and malformed rates). Behind a proxy set TRUSTED_PROXIES
(config/proxies.py), so the client's address, not the proxy's, is counted.
"""

import re

from django.core import checks as django_checks
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


# django-ratelimit's rate syntax: a count per (optionally multiplied) second, minute, hour or day: "30/h", "5/10m".
_RATE = re.compile(r"^\d+/\d*[smhd]$")


@django_checks.register()
def rate_limits_check(app_configs=None, **kwargs) -> list[django_checks.CheckMessage]:
    """RATE_LIMITS names only known limits and valid rates: a typo must not pass silently or fail a request."""
    errors = []
    for name, value in app_settings.RATE_LIMITS.items():
        if name not in DEFAULT_RATES:
            known = ", ".join(DEFAULT_RATES)
            errors.append(
                django_checks.Error(f"RATE_LIMITS: no limit named {name!r} (known: {known})", id="masthead.E001")
            )
        elif not _RATE.match(str(value)):
            errors.append(
                django_checks.Error(
                    f"RATE_LIMITS: {name}={value!r} is not a rate like 30/h, 5/m or 100/d", id="masthead.E002"
                )
            )
    return errors


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
