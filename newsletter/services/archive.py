"""What the public archive shows: sent issues of newsletters whose archive is public, without personal links."""

import re

from django.db.models import QuerySet

from newsletter import placeholders
from newsletter.models import Issue, Newsletter

# The layout wraps the footer's personal links in these comments (templates/email/*/_footer.mjml).
_PERSONAL_BLOCK = re.compile(r"<!--mh-personal-->.*?<!--/mh-personal-->", re.DOTALL)
# Any other link to a personal URL, should a custom layout not use the comments.
_PERSONAL_URLS = "|".join(re.escape(m) for m in (placeholders.UNSUBSCRIBE_URL, placeholders.PREFERENCES_URL))
_PERSONAL_LINK = re.compile(rf"<a\b[^>]*href=\"(?:{_PERSONAL_URLS})\"[^>]*>.*?</a>", re.DOTALL)
ARCHIVE_STATUSES = (Issue.Status.SENT,)


def archive_issues(newsletter: Newsletter) -> QuerySet[Issue]:
    """Issues listed in the archive and the feed: sent ones, newest first."""
    return newsletter.issues.filter(status__in=ARCHIVE_STATUSES, frozen_at__isnull=False).order_by(
        "-finished_at", "-frozen_at"
    )


def archive_html(frozen_html: str, language: str = "") -> str:
    """The frozen email for the web: personal links removed, the reader's name replaced by a neutral word (in the
    newsletter's `language`)."""
    html = _PERSONAL_BLOCK.sub("", frozen_html)
    html = _PERSONAL_LINK.sub("", html)
    return placeholders.substitute(
        html,
        {
            placeholders.NAME: placeholders.name_fallback(language) if language else placeholders.NAME_FALLBACK,
            placeholders.UNSUBSCRIBE_URL: "",
            placeholders.PREFERENCES_URL: "",
        },
    )
