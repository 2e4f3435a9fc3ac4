from django.db import migrations, models


class Migration(migrations.Migration):
    """A send left with only later deferred rows is woken at `wake_at`; an issue keeps its sender identity frozen
    with its render and says why it paused or failed; a scheduled issue that could not start fails unfrozen."""

    dependencies = [("newsletter", "0007_merge_20261203_0825")]

    operations = [
        migrations.AddField("sendrun", "wake_at", models.DateTimeField(blank=True, null=True)),
        migrations.AddField("issue", "frozen_sender", models.JSONField(blank=True, default=dict)),
        migrations.AddField("issue", "status_reason", models.TextField(blank=True)),
        migrations.RemoveConstraint("issue", "issue_sending_is_frozen"),
        migrations.AddConstraint(
            "issue",
            models.CheckConstraint(
                condition=models.Q(("status__in", ["draft", "scheduled", "failed"]), ("frozen_at__isnull", False),
                                   _connector="OR"),
                name="issue_sending_is_frozen",
            ),
        ),
    ]
