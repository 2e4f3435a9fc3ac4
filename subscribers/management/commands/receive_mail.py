"""`manage.py receive_mail [--recipient ADDRESS] [--sender ADDRESS] < message.eml`: the pipe door.

What Postfix's pipe(8) and Exim's pipe transport run for each message that comes back. The exit status follows
sendmail's conventions, which both MTAs act on: 0 accepted, 65 bad data (bounced to the sender), 67 no such user,
75 temporary failure (the MTA keeps the message and retries), so nothing is lost when the database is down.
"""

import logging
import sys

from django.core.management.base import BaseCommand

from subscribers.services.inbound import EX_TEMPFAIL, inbound_receive

log = logging.getLogger("masthead.inbound")


class Command(BaseCommand):
    help = "Read one bounce, complaint or unsubscribe email on standard input and act on it."
    requires_system_checks = []  # run once per message by the MTA: start fast

    def add_arguments(self, parser):
        parser.add_argument("--recipient", default="", help="envelope recipient (else Delivered-To/X-Original-To/To)")
        parser.add_argument("--sender", default="", help="envelope sender, for the log and the quarantine")

    def handle(self, *args, recipient: str, sender: str, **options):
        raw = sys.stdin.buffer.read()
        try:
            outcome = inbound_receive(raw, recipient=recipient, sender=sender)
        except Exception:  # anything unforeseen: the MTA keeps the message and retries, never a lost bounce
            log.exception("inbound: receive_mail failed; exit %s so the MTA retries", EX_TEMPFAIL)
            sys.stderr.write("temporary failure, try again later\n")
            sys.exit(EX_TEMPFAIL)
        if outcome.exit_code:
            # The MTA puts this line into its own bounce or log.
            sys.stderr.write(f"{outcome.smtp_reply}\n")
        else:
            self.stdout.write(outcome.action)
        sys.exit(outcome.exit_code)
