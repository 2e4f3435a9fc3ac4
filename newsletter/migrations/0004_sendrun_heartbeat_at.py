from django.db import migrations


class Migration(migrations.Migration):
    """`SendRun.batch_started_at` was the send's heartbeat all along (materialise chunks and resumes move it too)."""

    dependencies = [("newsletter", "0003_delivery_claim_index_and_send_run")]

    operations = [migrations.RenameField("sendrun", "batch_started_at", "heartbeat_at")]
