"""Sending controls for the issue admin: confirm and send/schedule, pause, resume, cancel, progress.

Mixed into IssueAdmin (admin.py) so the compose side and the send side stay in separate modules.
"""


class IssueSendingAdminMixin:
    pass
