from django.core.management.base import BaseCommand, CommandError

from newsletter.services.importing import FORMATS, ImportSourceError, articles_import_from


class Command(BaseCommand):
    help = (
        "Import articles from an RSS/Atom feed or a JSON file (a path or an http(s) URL). Items whose canonical "
        "URL or guid is already stored are skipped; bad items are listed and the command exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="File path or http(s) URL.")
        parser.add_argument("--format", choices=FORMATS, help="Default: guessed from the name and content.")

    def handle(self, source: str, format: str | None = None, **options):
        try:
            report = articles_import_from(source, format)
        except ImportSourceError as exc:
            raise CommandError(str(exc)) from exc
        for article in report.imported:
            self.stdout.write(f"imported: {article.headline}")
        for where in report.duplicates:
            self.stdout.write(f"skipped, already present: {where}")
        for error in report.errors:
            self.stderr.write(f"not imported: {error}")
        self.stdout.write(self.style.SUCCESS(report.summary()) if not report.errors else report.summary())
        if report.errors:
            raise CommandError(f"{len(report.errors)} item(s) could not be imported (listed above).")
