"""Sends that run themselves: feed digests composed (and optionally sent) on a schedule in the newsroom's own time
zone. Each scheduled slot is one FeedDigestRun row, unique per (digest, slot): a slot is composed exactly once
however many beats or workers look at it."""

import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone (e.g. Europe/Madrid)."), params={"value": value})


def validate_weekdays(value: str) -> None:
    if not value or any(ch not in "0123456" for ch in value):
        raise ValidationError(_("Give the days as digits 0 (Monday) to 6 (Sunday), e.g. 01234 for weekdays."))


class FeedDigest(models.Model):
    """A newsletter following a feed: at `send_time` on `weekdays` (local to `time_zone`) the feed's new items
    are imported and composed, in feed order, into a draft issue, which is sent at once when `auto_send` is on."""

    newsletter = models.ForeignKey("newsletter.Newsletter", on_delete=models.CASCADE, related_name="feed_digests")
    feed_url = models.URLField(max_length=500, help_text=_("RSS, Atom or JSON Feed URL."))
    weekdays = models.CharField(
        max_length=7, default="01234", validators=[validate_weekdays], help_text=_("0 = Monday … 6 = Sunday.")
    )
    send_time = models.TimeField(help_text=_("Local time of the digest."))
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    subject = models.CharField(
        max_length=200, default="{newsletter}: {date}", help_text=_("{newsletter} and {date} are filled in.")
    )
    max_articles = models.PositiveSmallIntegerField(default=10)
    auto_send = models.BooleanField(
        default=False, help_text=_("Send the composed issue at once; otherwise it waits as a draft for an editor.")
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter__name", "send_time"]

    def __str__(self) -> str:
        days = ", ".join(WEEKDAY_NAMES[int(d)] for d in sorted(set(self.weekdays)))
        return f"{self.newsletter}: {self.feed_url} ({days} {self.send_time:%H:%M} {self.time_zone})"


class FeedDigestRun(models.Model):
    """One scheduled slot of a digest and what came of it. The unique (digest, slot_at) pair and the conditional
    claim make a slot run once; a failed fetch may be retried within the slot's window."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        NOTHING_NEW = "nothing_new", _("Nothing new")
        COMPOSED = "composed", _("Composed (draft)")
        SENT = "sent", _("Sending started")
        NEEDS_REVIEW = "needs_review", _("Composed; needs an editor")
        FAILED = "failed", _("Feed could not be read")

    digest = models.ForeignKey(FeedDigest, on_delete=models.CASCADE, related_name="runs")
    slot_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveSmallIntegerField(default=0)
    detail = models.TextField(blank=True)
    issue = models.ForeignKey("newsletter.Issue", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-slot_at"]
        constraints = [models.UniqueConstraint(fields=["digest", "slot_at"], name="digest_run_once_per_slot")]

    def __str__(self) -> str:
        return f"{self.digest_id} @ {self.slot_at:%Y-%m-%d %H:%M}: {self.status}"
