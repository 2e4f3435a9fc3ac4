"""Thin Celery tasks of the engagement reports, run by beat (CELERY_BEAT_SCHEDULE): count queued hits, apply
the retention period, snapshot finished issues' delivery figures. All are safe to run twice and at the same time."""

from celery import shared_task

from engagement.services import hits, report, retention


@shared_task(name="engagement.flush", ignore_result=True, soft_time_limit=50, time_limit=60)
def flush_task() -> int:
    """Count the queued hits into the database."""
    return hits.hits_flush().hits


@shared_task(name="engagement.retention", ignore_result=True, soft_time_limit=240, time_limit=300)
def retention_task() -> int:
    """Roll per-reader events older than ENGAGEMENT_RETENTION_DAYS into the counts and delete them."""
    return retention.events_expire()


@shared_task(name="engagement.snapshots", ignore_result=True, soft_time_limit=240, time_limit=300)
def snapshots_task() -> int:
    """Re-count the delivery figures of recently finished issues for their reports."""
    return report.snapshots_refresh()
