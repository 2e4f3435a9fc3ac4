"""Thin Celery tasks: fetch by id, call one service. Names are stable; arguments are ids."""

from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(name="newsletter.heartbeat", bind=True, ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat_task(self) -> None:
    """Record that a worker is alive. Safe to run any number of times."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=self.request.hostname or "unknown", defaults={"seen_at": timezone.now()}
    )
