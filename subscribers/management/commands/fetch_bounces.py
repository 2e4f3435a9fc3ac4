"""`manage.py fetch_bounces [--limit N]`: poll the mailbox named by BOUNCE_IMAP_URL (for operators whose bounce
address lives at a provider) and act on what is there; run it from cron or a timer every few minutes."""

from django.core.management.base import BaseCommand, CommandError

from newsletter.conf import app_settings
from subscribers.services.inbound.mailbox import MailboxError, bounces_fetch, mailbox_config


class Command(BaseCommand):
    help = "Fetch bounces, complaints and unsubscribe emails from an IMAP mailbox and act on them."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="messages per run")

    def handle(self, *args, limit: int, **options):
        try:
            config = mailbox_config(app_settings.BOUNCE_IMAP_URL, verify=app_settings.SMTP_VERIFY_TLS)
        except MailboxError as exc:
            raise CommandError(str(exc)) from exc
        try:
            result = bounces_fetch(config, limit=limit)
        except (OSError, Exception) as exc:  # imaplib's errors, TLS, refused login: say what, exit non-zero
            raise CommandError(f"mailbox {config.host}:{config.port}: {exc}") from exc
        self.stdout.write(f"{result.seen} fetched, {result.acted} acted on and deleted, {result.kept} kept for later")
