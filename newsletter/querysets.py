"""Reusable filters for issues and deliveries."""

from django.db import models
from django.utils import timezone


class IssueQuerySet(models.QuerySet):
    def due(self, now=None):
        """Scheduled issues whose time has come."""
        return self.filter(status="scheduled", scheduled_at__lte=now or timezone.now())

    def sent(self):
        return self.filter(status="sent")


class DeliveryQuerySet(models.QuerySet):
    def claimable(self, now=None):
        """Rows a worker may claim: pending, or deferred whose next attempt has come."""
        now = now or timezone.now()
        return self.filter(models.Q(status="pending") | models.Q(status="deferred", next_attempt_at__lte=now))

    def lease_expired(self, now=None):
        """In-flight rows whose worker died: the lease ran out before an outcome was recorded."""
        return self.filter(status="sending", lease_until__lt=now or timezone.now())
