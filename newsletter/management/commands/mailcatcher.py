import signal
import threading

from aiosmtpd.controller import Controller
from django.core.management.base import BaseCommand

from newsletter.mailcatcher import MAIL_DIR, FolderHandler


class Command(BaseCommand):
    help = "Run a local SMTP server on loopback that keeps every message as an .eml file under var/mail/."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)

    def handle(self, host: str, port: int, **options):
        controller = Controller(FolderHandler(), hostname=host, port=port, data_size_limit=50 * 1024 * 1024)
        controller.start()
        self.stdout.write(f"Mail catcher listening on {host}:{port}; messages are kept in {MAIL_DIR}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        controller.stop()
