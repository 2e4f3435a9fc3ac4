"""Thin Celery tasks: fetch by id, call one service. Names start with `subscribers.` and so run on the
`priority` queue (CELERY_TASK_ROUTES), never behind a big issue's batches."""

import smtplib

from celery import shared_task

from newsletter.models import Newsletter

from . import dispatch
from .models import MailEvent, Subscriber
from .services.bounces import mail_event_process
from .services.emails import confirmation_send, erase_link_send, export_link_send
from .services.signup import subscriber_signup

# Transient failures only: a refused recipient or a bad message would fail the same way again.
TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)
# Transactional emails: short, retried with backoff on transient failures only.
EMAIL_TASK_OPTIONS = {
    "ignore_result": True,
    "soft_time_limit": 30,
    "time_limit": 60,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 10,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


@shared_task(name=dispatch.SIGNUP, **EMAIL_TASK_OPTIONS)
def signup_task(request: dict) -> str:
    """A public form's signup (services.signup.subscriber_signup_later), decided here rather than in the request.
    A newsletter deleted meanwhile: nothing to sign up to."""
    request = dict(request)
    newsletter = Newsletter.objects.filter(pk=request.pop("newsletter_id")).first()
    if newsletter is None:
        return "gone"
    return str(subscriber_signup(newsletter=newsletter, **request))


@shared_task(name=dispatch.SEND_CONFIRMATION, **EMAIL_TASK_OPTIONS)
def confirmation_send_task(subscriber_id: int, newsletter_id: int) -> str:
    """Send the double opt-in email (or the already-subscribed reminder). A subscriber erased meanwhile is
    skipped. At-least-once: a redelivery after a worker dies mid-send repeats the same valid link, harmlessly
    (the once-per-interval limit is enforced when the signup claims the slot)."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    newsletter = Newsletter.objects.filter(pk=newsletter_id).first()
    if subscriber is None or newsletter is None:
        return "gone"
    return confirmation_send(subscriber, newsletter)


@shared_task(name=dispatch.SEND_EXPORT_LINK, **EMAIL_TASK_OPTIONS)
def export_link_send_task(subscriber_id: int) -> str:
    """Email the data-export link. Skipped if the subscriber was erased meanwhile."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return "gone"
    export_link_send(subscriber)
    return "sent"


@shared_task(name=dispatch.SEND_ERASE_LINK, **EMAIL_TASK_OPTIONS)
def erase_link_send_task(subscriber_id: int) -> str:
    """Email the link that confirms an erasure. Skipped if the subscriber was erased meanwhile."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return "gone"
    erase_link_send(subscriber)
    return "sent"


@shared_task(name=dispatch.PROCESS_MAIL_EVENT, ignore_result=True, soft_time_limit=30, time_limit=60)
def mail_event_process_task(event_id: int) -> str:
    """Act on a recorded bounce/complaint/unsubscribe. Idempotent: a processed event is not processed again."""
    event = MailEvent.objects.filter(pk=event_id).first()
    if event is None:
        return "gone"
    return mail_event_process(event)
