"""The only place the subscribers app enqueues tasks: after the current transaction commits, by the task's stable
name (services never import tasks). Every `subscribers.*` task runs on the priority queue (CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import current_app
from django.db import transaction

SEND_CONFIRMATION = "subscribers.send_confirmation"
SEND_EXPORT_LINK = "subscribers.send_export_link"
PROCESS_MAIL_EVENT = "subscribers.process_mail_event"
SEND_ERASE_LINK = "subscribers.send_erase_link"
SIGNUP = "subscribers.signup"


def _enqueue(name: str, *args) -> None:
    transaction.on_commit(lambda: current_app.send_task(name, args=list(args)))


def confirmation_send_later(subscriber_id: int, newsletter_id: int) -> None:
    _enqueue(SEND_CONFIRMATION, subscriber_id, newsletter_id)


def export_link_send_later(subscriber_id: int) -> None:
    _enqueue(SEND_EXPORT_LINK, subscriber_id)


def signup_later(request: dict) -> None:
    _enqueue(SIGNUP, request)


def erase_link_send_later(subscriber_id: int) -> None:
    _enqueue(SEND_ERASE_LINK, subscriber_id)


def mail_event_process_later(event_id: int) -> None:
    _enqueue(PROCESS_MAIL_EVENT, event_id)
