"""Newsletters, the stored articles editors pick from, issues, and one Delivery row per recipient of an issue."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .querysets import DeliveryQuerySet, IssueQuerySet


def _image_upload_to(image: "Image", filename: str) -> str:
    # A random folder per image: names are unguessable and never reused, so the files can be cached forever.
    return f"images/{image.key}/{filename}"


class Image(models.Model):
    """An uploaded picture and its email renditions: JPEG, 600 px wide for the email and 1,200 px for
    high-density screens (never wider than the original). Made by `image_upload`; the files are written through
    the default storage."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    original = models.ImageField(upload_to=_image_upload_to)
    # The original's size the right way up (after the camera's rotation).
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    email_600 = models.ImageField(upload_to=_image_upload_to, blank=True, editable=False)
    email_1200 = models.ImageField(upload_to=_image_upload_to, blank=True, editable=False)
    title = models.CharField(max_length=200, blank=True, help_text=_("To find it again; not shown to readers."))
    alt_text = models.CharField(
        max_length=300,
        blank=True,
        help_text=_(
            "What the picture shows, for readers who cannot see it. Required before an issue using it is sent."
        ),
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or self.alt_text or self.original.name.rsplit("/", 1)[-1]


hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour as #rrggbb, e.g. #a3231b."))


def newsletter_default_language() -> str:
    """The site's language (LANGUAGE_CODE) when it is one of LANGUAGES, else the first of them."""
    codes = [code for code, _name in settings.LANGUAGES]
    return settings.LANGUAGE_CODE if settings.LANGUAGE_CODE in codes else codes[0]


class TrackingMode(models.TextChoices):
    """How an issue's opens and clicks are measured (engagement/). Per reader only for readers who agreed to it."""

    OFF = "off", _("Off: nothing is measured")
    AGGREGATE = "aggregate", _("Aggregate: counts per issue, story and link, nothing tied to a reader")
    PER_READER = "per_reader", _("Per reader, for readers who agreed (aggregate for everyone else)")


class Newsletter(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    from_name = models.CharField(max_length=200)
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True)
    postal_address = models.TextField(help_text=_("Printed in every email's footer (required by CAN-SPAM)."))
    template = models.CharField(max_length=100, default="default", help_text=_("MJML layout under templates/email/."))
    # A canary send holds the rest of the list when its first readers bounce or complain more than this.
    guard_hard_bounce_percent = models.FloatField(default=2.0, help_text=_("Canary: most hard bounces, in %."))
    guard_complaint_percent = models.FloatField(default=0.1, help_text=_("Canary: most spam complaints, in %."))
    # Branding: every layout reads these, so each newsletter looks like its own.
    logo = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text=_("Shown at the top.")
    )
    accent_colour = models.CharField(
        max_length=7, default="#a3231b", validators=[hex_colour], help_text=_("Links, rules and headings.")
    )
    header_text = models.CharField(max_length=200, blank=True, help_text=_("A line under the name, e.g. a tagline."))
    footer_text = models.TextField(blank=True, help_text=_("Printed in the footer above the postal address."))
    archive_public = models.BooleanField(default=True, help_text=_("List sent issues on the public archive."))
    created_at = models.DateTimeField(auto_now_add=True)
    # The fixed words of its emails (greeting, headings, footer, unsubscribe wording) and of its archive page.
    language = models.CharField(
        max_length=16,
        choices=settings.LANGUAGES,
        default=newsletter_default_language,
        help_text=_("The language of its emails and archive page."),
    )
    # Engagement measurement; fixed on each issue when its send starts (Issue.tracking_mode).
    tracking_mode = models.CharField(
        max_length=16,
        choices=TrackingMode.choices,
        default=TrackingMode.AGGREGATE,
        help_text=_("How opens and clicks are measured. Links are rewritten to short redirects unless off."),
    )
    tracking_pixel = models.BooleanField(
        default=False, help_text=_("Also count opens with a 1×1 image (off by default; image proxies blur it).")
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    """A stored news story. `body_html`, `commentary_html` are sanitised when saved through a service."""

    headline = models.CharField(max_length=300)
    slug = models.SlugField(max_length=300)
    dek = models.TextField(blank=True, help_text=_("Summary shown under the headline."))
    byline = models.CharField(max_length=200, blank=True)
    section = models.CharField(max_length=100, blank=True, db_index=True)
    tags = models.CharField(max_length=300, blank=True, help_text=_("Comma-separated."))
    canonical_url = models.URLField(max_length=500, blank=True)
    guid = models.CharField(max_length=500, blank=True, help_text=_("Feed identity used to deduplicate imports."))
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.PROTECT, related_name="articles",
        help_text=_("An uploaded image; it is used instead of the image URL."),
    )  # fmt: skip
    image_url = models.URLField(max_length=500, blank=True)
    image_alt = models.CharField(
        max_length=300, blank=True, help_text=_("Falls back to the uploaded image's alt text.")
    )
    published_at = models.DateTimeField(default=timezone.now, db_index=True)
    key_facts = models.JSONField(default=list, blank=True, help_text=_("A list of short sentences."))
    body_html = models.TextField(blank=True, help_text=_("The rest of the story."))
    # The Markdown source, kept: when set, body_html is generated from it on every save.
    body_markdown = models.TextField(blank=True)
    commentary_html = models.TextField(blank=True)
    bottom_line = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["canonical_url"], condition=~Q(canonical_url=""), name="article_unique_url"
            ),
            models.UniqueConstraint(fields=["guid"], condition=~Q(guid=""), name="article_unique_guid"),
        ]

    def __str__(self) -> str:
        return self.headline


# What an editor or an import may set on an article, in the order the admin form shows it.
ARTICLE_EDITABLE_FIELDS = [
    "headline", "slug", "dek", "byline", "section", "tags", "published_at", "canonical_url", "guid",
    "image_url", "image_alt", "key_facts", "body_html", "commentary_html", "bottom_line",
]  # fmt: skip


class Issue(models.Model):
    class Kind(models.TextChoices):
        ISSUE = "issue", _("Issue")
        # Sent to each reader once, when they confirm; stays "sending" while it is the newsletter's welcome.
        WELCOME = "welcome", _("Welcome email")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    newsletter = models.ForeignKey(Newsletter, on_delete=models.PROTECT, related_name="issues")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ISSUE)
    subject = models.CharField(max_length=200)
    preheader = models.CharField(max_length=200, blank=True, help_text=_("Inbox preview text."))
    intro = models.TextField(blank=True)
    # The sponsor block, shown after the intro when it has a name.
    sponsor_name = models.CharField(max_length=200, blank=True)
    sponsor_url = models.URLField(max_length=500, blank=True)
    sponsor_text = models.TextField(blank=True)
    sponsor_image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    articles = models.ManyToManyField(Article, through="IssueArticle", related_name="issues")
    # None: the whole newsletter. The segment's rules are copied when the send starts (`audience`), so editing
    # the segment later never changes who an issue in progress goes to.
    segment = models.ForeignKey(
        "Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="issues",
        help_text=_("Send to part of the newsletter's readers only."),
    )  # fmt: skip
    audience = models.JSONField(default=dict, blank=True, editable=False)
    # A canary send: this share (at least `canary_minimum` readers) goes first; the rest is held for
    # `canary_hold_minutes` and then follows by itself unless the newsletter's thresholds were crossed.
    canary_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(50)], help_text=_("0: no canary. E.g. 1 sends 1 % first.")
    )
    canary_minimum = models.PositiveIntegerField(default=200)
    canary_hold_minutes = models.PositiveSmallIntegerField(default=30)
    # Send windows, in each reader's own time zone (Subscriber.time_zone; blank: the site's TIME_ZONE): at a local
    # time (the next one at or after the send starts), or only inside a local window. Empty: at once.
    local_time = models.TimeField(
        null=True, blank=True, help_text=_("Deliver at this time in each reader's time zone, e.g. 07:00.")
    )
    window_start = models.TimeField(
        null=True, blank=True, help_text=_("Deliver only from this time in each reader's time zone …")
    )
    window_end = models.TimeField(null=True, blank=True, help_text=_("… until this one, e.g. 07:00 to 21:00."))
    # An A/B subject test: with a second subject, `ab_test_percent` of the readers (split evenly) get one subject
    # each (Delivery.variant 1 = `subject`, 2 = `subject_b` …); `ab_wait_minutes` after that share went out, the
    # subject with the best human click rate goes to the rest by itself.
    subject_b = models.CharField(max_length=200, blank=True, help_text=_("A second subject to test."))
    subject_c = models.CharField(max_length=200, blank=True)
    subject_d = models.CharField(max_length=200, blank=True)
    ab_test_percent = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(2), MaxValueValidator(90)],
        help_text=_("The share of readers in the test, split evenly between the subjects."),
    )  # fmt: skip
    ab_wait_minutes = models.PositiveIntegerField(
        default=120, help_text=_("How long to measure after the test share went out before the winner goes.")
    )
    # Why the issue is paused or failed (a canary that crossed a threshold …), for the editor.
    status_reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # Frozen when sending starts: what subscribers get and what the archive shows, never re-rendered.
    frozen_subject = models.CharField(max_length=200, blank=True)
    frozen_html = models.TextField(blank=True)
    frozen_text = models.TextField(blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    # Who it is from (from_name, from_email, reply_to, postal_address, mail_domain), frozen with the render.
    frozen_sender = models.JSONField(default=dict, blank=True)
    # Why the issue is paused or failed (a refusal by the mail server, a render error), for the editor.
    status_reason = models.TextField(blank=True)
    # The newsletter's tracking mode and pixel flag, frozen when the send starts ("": never measured).
    tracking_mode = models.CharField(max_length=16, choices=TrackingMode.choices, blank=True, default="")
    tracking_pixel = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Public identity for archive URLs, so links carry no sequential id.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("send_issue", "Can schedule, send, pause, resume and cancel issues")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="scheduled") | Q(scheduled_at__isnull=False),
                name="issue_scheduled_has_time",
            ),
            models.CheckConstraint(
                # A scheduled issue that could not start (it no longer renders) fails without a frozen render.
                condition=Q(status__in=["draft", "scheduled", "failed"]) | Q(frozen_at__isnull=False),
                name="issue_sending_is_frozen",
            ),
            # One welcome email in use per newsletter: confirming readers get exactly that one.
            models.UniqueConstraint(
                fields=["newsletter"], condition=Q(kind="welcome", status="sending"), name="issue_one_live_welcome"
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def ab_subjects(self) -> list[str]:
        """The subjects of an A/B test, variant 1 first; empty without a test."""
        others = [s for s in (self.subject_b, self.subject_c, self.subject_d) if s.strip()]
        return [self.subject, *others] if others else []

    def variant_subject(self, variant: int) -> str:
        """The subject variant `variant` is sent with (0, and 1, the frozen subject)."""
        subjects = self.ab_subjects
        if variant <= 1 or variant > len(subjects):
            return self.frozen_subject or self.subject
        return subjects[variant - 1]

    @property
    def has_send_window(self) -> bool:
        return self.local_time is not None or self.window_start is not None

    def clean(self) -> None:
        if self.segment_id and self.newsletter_id and self.segment.newsletter_id != self.newsletter_id:
            raise ValidationError({"segment": _("Choose a segment of this issue's newsletter.")})
        if (self.window_start is None) != (self.window_end is None):
            raise ValidationError({"window_end": _("Give both ends of the window, or neither.")})
        if self.window_start is not None and self.window_start == self.window_end:
            raise ValidationError({"window_end": _("The window must not end when it starts.")})
        if self.local_time is not None and self.window_start is not None:
            raise ValidationError({"local_time": _("Choose a local time or a window, not both.")})
        if self.has_send_window and self.canary_percent:
            raise ValidationError({"canary_percent": _("A canary cannot be combined with local delivery times.")})
        if self.ab_subjects:
            if self.canary_percent:
                raise ValidationError({"subject_b": _("An A/B subject test cannot be combined with a canary.")})
            if self.has_send_window:
                raise ValidationError({"subject_b": _("An A/B subject test cannot be combined with local times.")})
            if self.newsletter_id and self.newsletter.tracking_mode == TrackingMode.OFF:
                raise ValidationError(
                    {"subject_b": _("An A/B test needs clicks measured: this newsletter's tracking mode is off.")}
                )
            if len({s.strip().lower() for s in self.ab_subjects}) < len(self.ab_subjects):
                raise ValidationError({"subject_b": _("Give each subject of the test different words.")})

    def transition_to(self, status: str, from_status: str | None = None, **fields) -> bool:
        """Move to `status` if the current status allows it (and is `from_status`, when given), as one conditional
        UPDATE (safe against races: of two concurrent callers, exactly one wins). Returns whether this call made
        the change."""
        sources = [src for src, targets in ISSUE_TRANSITIONS.items() if status in targets]
        if from_status is not None:
            sources = [src for src in sources if src == from_status]
        changed = Issue.objects.filter(pk=self.pk, status__in=sources).update(
            status=status, updated_at=timezone.now(), **fields
        )
        if changed:
            self.status = status
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)


# Which status may follow which. `failed` is a scheduled send that could not start (its render broke meanwhile):
# the editor fixes it and sends it, or takes it back to draft.
ISSUE_TRANSITIONS: dict[str, set[str]] = {
    Issue.Status.DRAFT: {Issue.Status.SCHEDULED, Issue.Status.SENDING},
    Issue.Status.SCHEDULED: {Issue.Status.DRAFT, Issue.Status.SENDING, Issue.Status.CANCELLED, Issue.Status.FAILED},
    Issue.Status.SENDING: {Issue.Status.PAUSED, Issue.Status.SENT, Issue.Status.CANCELLED, Issue.Status.FAILED},
    Issue.Status.PAUSED: {Issue.Status.SENDING, Issue.Status.CANCELLED},
    # A finished send may be reopened to deliver to those who did not get it ("resend to missing").
    Issue.Status.SENT: {Issue.Status.SENDING},
    Issue.Status.FAILED: {Issue.Status.DRAFT, Issue.Status.SENDING, Issue.Status.CANCELLED},
    Issue.Status.CANCELLED: set(),
}


class IssueArticle(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="items")
    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="issue_items")
    position = models.PositiveIntegerField(default=0)
    section = models.CharField(
        max_length=100, blank=True,
        help_text=_("Heading the article appears under, e.g. “City hall”; consecutive articles share a heading."),
    )  # fmt: skip
    blurb = models.TextField(blank=True, help_text=_("Optional editor's note shown above the article in this issue."))

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["issue", "article"], name="issue_article_once")]

    def __str__(self) -> str:
        return f"{self.position}. {self.article}"


class Delivery(models.Model):
    """One recipient of one issue. The unique (issue, subscriber) pair is what makes a duplicate send impossible
    except for the message in flight when a worker dies (its lease expires and the row is claimed again)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEFERRED = "deferred", _("Deferred")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        # Waiting for a canary to prove the send healthy: not claimable until released.
        HELD = "held", _("Held")

    class BounceKind(models.TextChoices):
        HARD = "hard", _("Hard bounce")
        SOFT = "soft", _("Soft bounce")

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="deliveries")
    # SET_NULL: erasing a subscriber keeps the issue's counts but nothing personal.
    subscriber = models.ForeignKey(
        "subscribers.Subscriber", null=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_text = models.TextField(blank=True)
    # What happened after the receiving server accepted it: a bounce (DSN, ESP webhook) or a spam complaint.
    # The status stays "sent" (it was handed over); these say what came back later, for the issue's counts.
    # db_default: the materialising INSERT … SELECT names only the columns it fills.
    bounce_kind = models.CharField(max_length=8, choices=BounceKind.choices, blank=True, db_default="")
    bounce_code = models.CharField(max_length=16, blank=True, db_default="")
    bounce_text = models.CharField(max_length=300, blank=True, db_default="")
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    # Which version of the issue this reader gets (an A/B subject test); 0 without a test. Part of every tracked
    # link of the message, so engagement counts are kept per variant.
    variant = models.PositiveSmallIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["issue", "subscriber"], name="delivery_once_per_subscriber")]
        indexes = [
            models.Index(fields=["issue", "status"], name="delivery_issue_status"),
            # Claims walk pending rows by id (keyset); a partial index keeps that walk off the sent rows.
            models.Index(fields=["issue", "id"], condition=Q(status="pending"), name="delivery_pending"),
            # Only in-flight rows are in these two, so they stay tiny however large the ledger grows: a batch
            # releasing its claim, and recovery looking for leases that ran out.
            models.Index(fields=["claim_token"], condition=Q(status="sending"), name="delivery_sending_claim"),
            models.Index(fields=["lease_until"], condition=Q(status="sending"), name="delivery_sending_lease"),
            # Webhooks find the delivery by the Message-ID they report; rows not yet sent have none.
            models.Index(fields=["message_id"], condition=~Q(message_id=""), name="delivery_message_id"),
            # The engagement report counts what came back (bounces, complaints) without reading every sent row.
            models.Index(
                fields=["issue"],
                condition=~Q(bounce_kind="") | Q(complained_at__isnull=False),
                name="delivery_came_back",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.issue_id}/{self.subscriber_id}: {self.status}"


class SendRun(models.Model):
    """Bookkeeping of one issue's send, beside the issue so the compose side never has to care.

    `materialised_at` says every recipient has its Delivery row (until then the send cannot finish);
    `heartbeat_at` is the send's heartbeat: the last time anything worked on it (a batch claimed, a materialise
    chunk, a start or resume). Recovery restarts a send whose heartbeat is older than a lease (a Redis flush, every
    worker killed). Written only by newsletter.delivery.
    """

    issue = models.OneToOneField(Issue, on_delete=models.CASCADE, primary_key=True, related_name="send_run")
    materialised_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When a send whose chains ended with only later deferred rows left is to be woken (the earliest is due).
    wake_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    resends = models.PositiveSmallIntegerField(default=0)
    # Canary: how many went first, until when the rest waits once they are done, and when it was decided.
    canary_size = models.PositiveIntegerField(null=True, blank=True)
    hold_until = models.DateTimeField(null=True, blank=True)
    canary_decided_at = models.DateTimeField(null=True, blank=True)
    # A/B subject test: how many readers were in the test, until when it is measured once they were sent to, the
    # winning variant and the figures it was chosen on (automations' report shows them).
    ab_test_size = models.PositiveIntegerField(null=True, blank=True)
    ab_wait_until = models.DateTimeField(null=True, blank=True)
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    ab_winner = models.PositiveSmallIntegerField(null=True, blank=True)
    ab_result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"send of issue {self.issue_id}"


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker answered beat's heartbeat, so editors can see that sending will happen."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname


class Segment(models.Model):
    """A saved part of a newsletter's audience. Every rule given must hold; an empty rule is no restriction. An
    issue sent to a segment goes to the newsletter's mailable subscribers who match it when the send starts."""

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    tags_any = models.ManyToManyField(
        "subscribers.Tag", blank=True, related_name="+", help_text=_("Has at least one of these tags.")
    )
    tags_none = models.ManyToManyField(
        "subscribers.Tag", blank=True, related_name="+", help_text=_("Has none of these tags.")
    )
    sources = models.JSONField(
        default=list, blank=True, help_text=_("Signup sources (form, embed, import, admin, api …); empty: any.")
    )
    languages = models.JSONField(default=list, blank=True, help_text=_("Language codes; empty: any."))
    signed_up_after = models.DateField(null=True, blank=True)
    signed_up_before = models.DateField(null=True, blank=True)
    # Engagement: readers who clicked a link (a human click, engagement's classifier) in one of the newsletter's
    # last N issues. Only per-reader measurement knows who clicked: readers who did not agree never match.
    clicked_in_last_issues = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("Clicked a link in one of the last N issues. Only readers measured per reader (tracking mode "
                    "“per reader”, readers who agreed) can match."),
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter__name", "name"]
        constraints = [models.UniqueConstraint(fields=["newsletter", "name"], name="segment_unique_name")]

    def __str__(self) -> str:
        return f"{self.newsletter}: {self.name}"
