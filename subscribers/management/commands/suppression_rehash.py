"""manage.py suppression_rehash: after a rotation of SUPPRESSION_HASH_KEY, re-key the suppression list."""

from django.core.management.base import BaseCommand

from subscribers.models import suppression_key_id, suppression_keys
from subscribers.services.suppression import suppressions_rehash


class Command(BaseCommand):
    help = (
        "Re-hash the suppression list under the current SUPPRESSION_HASH_KEY (every entry whose address is still "
        "on file). Safe to run twice."
    )

    def handle(self, *args, **options):
        report = suppressions_rehash()
        current = suppression_key_id(suppression_keys()[0])
        self.stdout.write(
            f"{report.rehashed} entries re-hashed under the current key ({current}); {report.current} already were."
        )
        for key_id, count in sorted(report.left.items()):
            named = f"key {key_id}" if key_id else "a key from before key ids were recorded"
            self.stdout.write(
                f"{count} entries stay under {named}: their address is no longer held (erased people, or addresses "
                "suppressed that were never on file), so they cannot be re-hashed. Keep that key in "
                "SUPPRESSION_HASH_KEY_FALLBACKS for as long as they must be kept out of imports."
            )
