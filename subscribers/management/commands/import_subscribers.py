"""manage.py import_subscribers FILE --newsletter SLUG: the same import as the admin's, from a shell."""

from django.core.management.base import BaseCommand, CommandError

from newsletter.conf import app_settings
from newsletter.models import Newsletter
from subscribers.services.importing import subscribers_import


class Command(BaseCommand):
    help = "Import subscribers from a CSV file (header with an 'email' column, optional 'name')."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--newsletter", required=True, help="slug of the newsletter to subscribe them to")
        parser.add_argument(
            "--consent",
            default="Imported by an operator who attests these people consented.",
            help="how these people consented (recorded in the consent ledger)",
        )

    def handle(self, *args, file: str, newsletter: str, consent: str, **options):
        try:
            target = Newsletter.objects.get(slug=newsletter)
        except Newsletter.DoesNotExist as exc:
            known = ", ".join(Newsletter.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No newsletter with slug {newsletter!r} (known: {known}).") from exc
        try:
            with open(file, "rb") as stream:
                report = subscribers_import(
                    stream,
                    target,
                    source_detail=f"file {file}",
                    consent_text=consent,
                    policy_version=app_settings.POLICY_VERSION,
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from exc
        for row in report.rejected:
            self.stderr.write(f"line {row.line}: {row.value!r}: {row.reason}")
        self.stdout.write(
            f"{report.imported} imported, {report.added} added to {target.slug}, {report.unchanged} already "
            f"subscribed, {len(report.rejected)} rejected."
        )
