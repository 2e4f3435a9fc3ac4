"""Complaints per issue: a send pauses itself when readers report it as spam more than COMPLAINT_PAUSE_RATE."""

from __future__ import annotations

import logging

from newsletter.conf import app_settings
from newsletter.delivery.lifecycle import send_pause
from newsletter.models import Delivery, Issue
from subscribers.models import MailEvent

log = logging.getLogger(__name__)


def issue_complaint_rate(issue_id: int) -> float:
    """Complaints about the issue per message sent (0 when nothing was sent yet)."""
    sent = Delivery.objects.filter(issue_id=issue_id, status=Delivery.Status.SENT).count()
    complaints = MailEvent.objects.filter(issue_id=issue_id, kind=MailEvent.Kind.COMPLAINT).count()
    return complaints / sent if sent else float(complaints > 0)


def issue_complaint_check(issue_id: int) -> bool:
    """Pause the issue's send when its complaint rate is above COMPLAINT_PAUSE_RATE. Returns whether this call
    paused it (an issue already paused, finished or cancelled is left alone)."""
    threshold = app_settings.COMPLAINT_PAUSE_RATE
    rate = issue_complaint_rate(issue_id)
    if rate <= threshold:
        return False
    issue = Issue.objects.filter(pk=issue_id).first()
    if issue is None or issue.status != Issue.Status.SENDING:
        return False
    reason = f"complaint rate {rate:.2%} is above {threshold:.2%}"
    if not send_pause(issue, reason=reason):  # it finished, was paused or cancelled since the status was read
        return False
    log.warning("Paused issue %s: %s", issue.pk, reason)
    return True
