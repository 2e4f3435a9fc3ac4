"""manage.py send_issue ISSUE_ID [--wait] [--pause | --resume | --cancel]: the admin's sending controls on the CLI."""

import time

from django.core.management.base import BaseCommand, CommandError

from newsletter.models import Issue
from newsletter.services import sending


class Command(BaseCommand):
    help = (
        "Send an issue now (a draft or scheduled issue), or pause, resume or cancel its send. Workers do the "
        "sending; with --wait, progress is printed until the send ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("issue_id", type=int)
        parser.add_argument("--wait", action="store_true", help="Print progress until the send ends.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between progress lines.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--pause", action="store_true")
        action.add_argument("--resume", action="store_true")
        action.add_argument("--cancel", action="store_true")

    def handle(self, issue_id: int, wait: bool, interval: float, pause: bool, resume: bool, cancel: bool, **_):
        issue = Issue.objects.select_related("newsletter").filter(pk=issue_id).first()
        if issue is None:
            raise CommandError(f"There is no issue with id {issue_id}.")
        try:
            if pause:
                sending.issue_pause(issue, reason="send_issue --pause")
                self.stdout.write(f"Issue {issue_id} paused.")
            elif resume:
                sending.issue_resume(issue)
                self.stdout.write(f"Issue {issue_id} resumed.")
            elif cancel:
                skipped = sending.issue_cancel(issue)
                self.stdout.write(f"Issue {issue_id} cancelled; {skipped} deliveries will not be sent.")
            elif issue.status in (Issue.Status.DRAFT, Issue.Status.SCHEDULED):
                count = sending.issue_recipient_count(issue)
                sending.issue_send_now(issue)
                self.stdout.write(f"Sending issue {issue_id} “{issue.subject}” to {count} subscribers.")
            else:
                self.stdout.write(f"Issue {issue_id} is {issue.get_status_display().lower()}.")
        except sending.SendError as exc:
            raise CommandError(str(exc)) from exc
        self._print(issue)
        while wait:
            progress = self._print(issue)
            if progress["finished"] or progress["status"] == Issue.Status.PAUSED:
                break
            time.sleep(interval)

    def _print(self, issue: Issue) -> dict:
        p = sending.issue_progress(issue)
        c = p["counts"]
        eta = f"{p['eta_seconds']} s" if p["eta_seconds"] is not None else "-"
        self.stdout.write(
            f"{p['status']:<9} {p['percent']:5.1f} %  {p['done']}/{p['total']}  sent {c['sent']}  "
            f"pending {c['pending'] + c['sending']}  deferred {c['deferred']}  failed {c['failed']}  "
            f"skipped {c['skipped']}  {p['rate']:.0f}/s  ETA {eta}"
        )
        self.stdout.flush()
        return p
