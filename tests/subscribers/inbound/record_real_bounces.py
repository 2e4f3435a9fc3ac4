"""Record the bounces real MTAs write into test fixtures: postfix_real_dsn.eml and exim_real_dsn.eml.

Run as root on a Debian machine:

    .venv/bin/python tests/subscribers/inbound/record_real_bounces.py postfix
    .venv/bin/python tests/subscribers/inbound/record_real_bounces.py exim

postfix: needs Debian's postfix ("Local only", as .ci/run installs it). It points Postfix (loopback only) at a
throwaway SMTP listener for the bounce domain and sends one message from a VERP address to a local user that does
not exist; local(8) refuses it and Postfix sends its DSN to the listener.

exim: Debian's exim4 and postfix conflict as packages, so Exim runs unpacked beside Postfix, never installed:
`apt-get download exim4-daemon-light && dpkg -x exim4-daemon-light_*.deb /tmp/exim` (plus `apt-get install
libidn12` and a `Debian-exim` system user, which the binary is built for). Exim runs once with its own config
(-C, a spool under the temporary folder): the local user does not exist, the address is unrouteable, and Exim's
bounce goes to the listener. EXIM=/path/to/exim4 overrides where the binary is.

Each captured message is written with the per-run values replaced by the fixture placeholders ({{VERP}}, {{RCPT}},
{{RCPT_LOCAL}}, {{MSGID}}). The live end-to-end test (tests/subscribers/test_inbound_postfix.py) does the Postfix
round trip through the whole send path on every CI run.
"""

import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.subscribers.postfix import BOUNCE_DOMAIN, postfix_configure  # noqa: E402

HERE = Path(__file__).parent

EXIM_CONFIG = """
primary_hostname = mx.exim.test
exim_path = {exim}
spool_directory = {spool}
log_file_path = {spool}/%slog
domainlist local_domains = localhost
never_users =
keep_environment =
begin routers
bounce_domain:
  driver = manualroute
  domains = {bounce_domain}
  transport = to_listener
  route_list = * 127.0.0.1 byname
  self = send
local_user:
  driver = accept
  domains = +local_domains
  check_local_user
  transport = local_delivery
begin transports
to_listener:
  driver = smtp
  port = {port}
  allow_localhost
local_delivery:
  driver = appendfile
  file = {spool}/mbox
begin retry
* * F,1m,1m
"""


class Capture:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _message(ghost: str, message_id: str) -> bytes:
    return (
        f"From: The Newsroom <news@example.org>\r\nTo: {ghost}\r\nSubject: The Daily Brief\r\n"
        f"Message-ID: {message_id}\r\n\r\nToday's stories.\r\n"
    ).encode()


def _send_postfix(port: int, verp: str, ghost: str, message_id: str) -> None:
    postfix_configure(port)
    with smtplib.SMTP("127.0.0.1", 25, timeout=30) as smtp:
        smtp.sendmail(verp, [ghost], _message(ghost, message_id))


def _send_exim(port: int, verp: str, ghost: str, message_id: str) -> None:
    exim = os.environ.get("EXIM", "/tmp/exim/usr/sbin/exim4")
    spool = Path(tempfile.mkdtemp(prefix="exim-spool-"))
    spool.chmod(0o777)
    config = spool / "exim.conf"
    config.write_text(EXIM_CONFIG.format(exim=exim, spool=spool, bounce_domain=BOUNCE_DOMAIN, port=port))
    data = _message(ghost, message_id).replace(b"\r\n", b"\n")
    subprocess.run([exim, "-C", str(config), "-odi", "-f", verp, ghost], input=data, check=True)


def main(mta: str) -> None:
    send = {"postfix": _send_postfix, "exim": _send_exim}[mta]
    capture = Capture()
    port = _free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port, server_hostname=BOUNCE_DOMAIN)
    controller.start()
    verp = f"bounces+{uuid.uuid4().hex[:6]}-abcdefghijklmnop@{BOUNCE_DOMAIN}"
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@localhost"
    message_id = f"<{uuid.uuid4().hex}.1@news.example.org>"
    try:
        send(port, verp, ghost, message_id)
        deadline = time.monotonic() + 60
        while not capture.messages and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        controller.stop()
    if not capture.messages:
        sys.exit(f"{mta} sent no bounce within 60 s (see its log)")
    text = capture.messages[0].decode("utf-8", "replace")
    text = text.replace(verp, "{{VERP}}").replace(ghost, "{{RCPT}}").replace(message_id, "{{MSGID}}")
    text = text.replace(ghost.split("@")[0], "{{RCPT_LOCAL}}")
    target = HERE / f"{mta}_real_dsn.eml"
    target.write_text(text.replace("\r\n", "\n"))
    print("wrote", target)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postfix")
