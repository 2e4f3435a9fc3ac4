from django.contrib import admin

from .models import FeedDigest, FeedDigestRun


class FeedDigestRunInline(admin.TabularInline):
    model = FeedDigestRun
    fields = ["slot_at", "status", "attempts", "issue", "detail"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-slot_at"]


@admin.register(FeedDigest)
class FeedDigestAdmin(admin.ModelAdmin):
    list_display = ["__str__", "auto_send", "active", "last_run"]
    list_filter = ["active", "auto_send", "newsletter"]
    inlines = [FeedDigestRunInline]

    @admin.display(description="Last run")
    def last_run(self, digest: FeedDigest) -> str:
        run = digest.runs.order_by("-slot_at").first()
        if run is None:
            return "—"
        return f"{run.slot_at:%Y-%m-%d %H:%M} UTC: {run.get_status_display()}" + (
            f" — {run.detail[:120]}" if run.status in (run.Status.FAILED, run.Status.NEEDS_REVIEW) else ""
        )
