"""What readers did with an issue, measured as privately as the newsletter's tracking mode allows.

Aggregate counts (Tally) hold nothing about a reader: an issue, a link number, a variant, a verdict, an hour.
Per-reader events (Event) exist only in per-reader mode, only for readers who agreed (ReaderConsent), and are
deleted when the reader withdraws, is erased, or the retention period ends (their counts stay in Tally). No row
here ever holds an IP address or a user agent: the classifier reads them during the request and keeps its verdict.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

# Link number 0 is the issue's open pixel; tracked links are numbered from 1 in the order they appear.
OPEN = 0


class Verdict(models.IntegerChoices):
    HUMAN = 0, _("Human")
    MACHINE = 1, _("Machine (scanner, prefetch)")
    APPLE_MPP = 2, _("Apple Mail Privacy Protection")
    GOOGLE_PROXY = 3, _("Gmail image proxy")


class Link(models.Model):
    """One distinct URL of a frozen issue, with the story it belongs to. The redirect goes only to these."""

    issue = models.ForeignKey("newsletter.Issue", on_delete=models.CASCADE, related_name="tracked_links")
    number = models.PositiveIntegerField()
    url = models.TextField()
    article = models.ForeignKey(
        "newsletter.Article", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["issue", "number"]
        constraints = [models.UniqueConstraint(fields=["issue", "number"], name="link_number_once")]

    def __str__(self) -> str:
        return f"{self.issue_id}#{self.number} {self.url}"


class Tally(models.Model):
    """Aggregate count of hits: per issue, link (0: opens), variant, verdict and hour since the send started
    (0…47; 48 for everything later). Incremented in batches by the flush, never per request."""

    issue = models.ForeignKey("newsletter.Issue", on_delete=models.CASCADE, related_name="+")
    link_number = models.PositiveIntegerField()
    variant = models.PositiveSmallIntegerField(default=0)
    verdict = models.PositiveSmallIntegerField(choices=Verdict.choices)
    hour = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "link_number", "variant", "verdict", "hour"], name="tally_once")
        ]

    def __str__(self) -> str:
        return f"{self.issue_id}#{self.link_number} v{self.variant}: {self.count}"


class Event(models.Model):
    """One hit by a reader who agreed to per-reader measurement. Deleted on withdrawal, erasure and retention."""

    issue = models.ForeignKey("newsletter.Issue", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey("newsletter.Delivery", on_delete=models.CASCADE, related_name="+")
    subscriber = models.ForeignKey("subscribers.Subscriber", on_delete=models.CASCADE, related_name="+")
    link_number = models.PositiveIntegerField()
    variant = models.PositiveSmallIntegerField(default=0)
    verdict = models.PositiveSmallIntegerField(choices=Verdict.choices)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["issue", "link_number"], name="event_issue_link"),
            models.Index(fields=["subscriber"], name="event_subscriber"),
            models.Index(fields=["at"], name="event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.issue_id}#{self.link_number} at {self.at}"


class UniqueTally(models.Model):
    """Distinct readers with a human hit, counted when their per-reader event is first written: per issue,
    variant and link (OPEN: opened; ANY_CLICK: clicked anything). An aggregate like Tally: it names nobody, and it
    stays when the events it was counted from are deleted (withdrawal, erasure, retention)."""

    ANY_CLICK = -1

    issue = models.ForeignKey("newsletter.Issue", on_delete=models.CASCADE, related_name="+")
    variant = models.PositiveSmallIntegerField(default=0)
    link_number = models.IntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "variant", "link_number"], name="unique_tally_once")]

    def __str__(self) -> str:
        return f"{self.issue_id}#{self.link_number} v{self.variant}: {self.count} readers"


class ReaderConsent(models.Model):
    """A reader's agreement to per-reader measurement of one newsletter (the ledger has the wording and version).
    Only the mailbox owner's actions create one that counts: a signup's choice takes effect with its confirmation,
    because only confirmed subscriptions are mailed."""

    subscriber = models.ForeignKey("subscribers.Subscriber", on_delete=models.CASCADE, related_name="+")
    newsletter = models.ForeignKey("newsletter.Newsletter", on_delete=models.CASCADE, related_name="+")
    policy_version = models.CharField(max_length=32, blank=True)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "newsletter"], name="reader_consent_once")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} → {self.newsletter_id}"


class PendingHit(models.Model):
    """The hit queue when there is no Redis (the embedded SQLite setup): one small insert per hit, drained by
    the flush like the Redis list. Holds the classifier's flags, never an IP or user agent."""

    record = models.CharField(max_length=200)
    created_at = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return self.record


class IssueSnapshot(models.Model):
    """The delivery side of a finished issue's report, counted by beat every few minutes while bounces and
    complaints still arrive (ENGAGEMENT_SNAPSHOT_DAYS), so opening the report never counts a million rows. The
    page says when it was counted."""

    issue = models.OneToOneField("newsletter.Issue", on_delete=models.CASCADE, primary_key=True, related_name="+")
    statuses = models.JSONField(default=list)  # [[status, variant, count], …]
    bounced_hard = models.PositiveIntegerField(default=0)
    bounced_soft = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    unsubscribes = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.issue_id} at {self.taken_at}"
