"""Record the bounce a real Postfix writes into a test fixture (postfix_real_dsn.eml).

Run as root on a Debian machine with Postfix installed (`apt-get install postfix`, "Local only"):

    .venv/bin/python tests/subscribers/inbound/record_real_bounces.py

It points Postfix (loopback only) at a throwaway SMTP listener for the bounce domain, sends one message from a
VERP address to a local user that does not exist, captures the DSN Postfix sends back, and writes it with the
per-run values replaced by the fixture placeholders ({{VERP}}, {{RCPT}}, {{MSGID}}). The live end-to-end test
(tests/subscribers/test_inbound_postfix.py) does the same through the whole send path on every CI run.
"""

import smtplib
import socket
import sys
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.subscribers.postfix import BOUNCE_DOMAIN, postfix_configure  # noqa: E402

HERE = Path(__file__).parent


class Capture:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK"


def main() -> None:
    capture = Capture()
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(capture, hostname="127.0.0.1", port=port, server_hostname=BOUNCE_DOMAIN)
    controller.start()
    postfix_configure(port)
    verp = f"bounces+{uuid.uuid4().hex[:6]}-abcdefghijklmnop@{BOUNCE_DOMAIN}"
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@localhost"
    message_id = f"<{uuid.uuid4().hex}.1@news.example.org>"
    body = (
        f"From: The Newsroom <news@example.org>\r\nTo: {ghost}\r\nSubject: The Daily Brief\r\n"
        f"Message-ID: {message_id}\r\n\r\nToday's stories.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", 25, timeout=30) as smtp:
        smtp.sendmail(verp, [ghost], body.encode())
    deadline = time.monotonic() + 60
    while not capture.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    controller.stop()
    if not capture.messages:
        sys.exit("Postfix sent no bounce within 60 s (see its log)")
    text = capture.messages[0].decode("utf-8", "replace")
    text = text.replace(verp, "{{VERP}}").replace(ghost, "{{RCPT}}").replace(message_id, "{{MSGID}}")
    text = text.replace(ghost.split("@")[0], "{{RCPT_LOCAL}}")
    (HERE / "postfix_real_dsn.eml").write_text(text.replace("\r\n", "\n"))
    print("wrote", HERE / "postfix_real_dsn.eml")


if __name__ == "__main__":
    main()
