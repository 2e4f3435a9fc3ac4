"""A local SMTP server for development: every message it accepts is kept as an .eml file in MAIL_DIR.

Built on aiosmtpd. It never relays anything anywhere. `manage.py mailcatcher` runs it; the web process shows the
folder at /dev/mail/ when DEBUG is on.
"""

import itertools
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from newsletter.conf import app_settings

MAIL_DIR: Path = app_settings.VAR_DIR / "mail"
_seq = itertools.count()


class FolderHandler:
    """aiosmtpd handler: write each accepted message to its own file, named so they sort by arrival."""

    def __init__(self, folder: Path = MAIL_DIR):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.time_ns()}-{next(_seq):06d}.eml"
        headers = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        (self.folder / name).write_bytes(headers.encode() + envelope.original_content)
        return "250 Message accepted for delivery"


def recent_messages(limit: int = 100) -> list[tuple[str, EmailMessage]]:
    if not MAIL_DIR.exists():
        return []
    files = sorted(MAIL_DIR.glob("*.eml"), reverse=True)[:limit]
    return [(f.name, message_from_bytes(f.read_bytes(), policy=policy.default)) for f in files]


def read_message(name: str) -> EmailMessage | None:
    path = MAIL_DIR / Path(name).name  # basename only: no path traversal
    if path.suffix != ".eml" or not path.is_file():
        return None
    return message_from_bytes(path.read_bytes(), policy=policy.default)
