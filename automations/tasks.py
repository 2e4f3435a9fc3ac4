"""Thin Celery tasks for automations; beat calls them, they call one service each."""

from celery import shared_task

from .services.digests import digests_run_due


@shared_task(name="automations.run_digests", ignore_result=True, soft_time_limit=120, time_limit=150)
def run_digests_task() -> int:
    """Beat, every minute: compose (and send) the feed digests whose slot has come. Safe to run twice."""
    return len(digests_run_due())
