"""A real Postfix on this machine, for the inbound tests: loopback only ("Local only" install), mail for the bounce
domain handed to a local SMTP port, unknown local users accepted and then bounced by local(8) with a real DSN."""

import shutil
import subprocess
from pathlib import Path

BOUNCE_DOMAIN = "bounces.masthead.test"


def postfix_binary() -> str | None:
    return shutil.which("postfix") or (str(Path("/usr/sbin/postfix")) if Path("/usr/sbin/postfix").exists() else None)


def postconf_binary() -> str:
    return shutil.which("postconf") or "/usr/sbin/postconf"


def postfix_configure(port: int) -> None:
    """Point Postfix's bounces for BOUNCE_DOMAIN at 127.0.0.1:port and make sure it runs. Everything else stays
    local: a "Local only" Postfix listens on loopback and its default and relay transports refuse to relay."""
    subprocess.run(
        [
            postconf_binary(),
            "-e",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "local_recipient_maps =",  # accept unknown local users at RCPT, so local(8) bounces them with a DSN
            "default_transport = error",
            "relay_transport = error",
            f"transport_maps = inline:{{{BOUNCE_DOMAIN}=smtp:[127.0.0.1]:{port}}}",
            "smtp_tls_security_level = none",
        ],
        check=True,
    )
    if not Path("/etc/aliases.db").exists() and shutil.which("newaliases"):
        subprocess.run(["newaliases"], check=False)
    binary = postfix_binary()
    running = subprocess.run([binary, "status"], capture_output=True).returncode == 0
    subprocess.run([binary, "reload" if running else "start"], check=True, capture_output=True)
