"""`manage.py inbound_smtp [--host 127.0.0.1] [--port 2525]`: the SMTP door for bounces, complaints and mailto
unsubscribes (the Procfile's `inbound`). Loopback by default: put it behind the MX or relay that receives mail
for BOUNCE_DOMAIN, or bind it wider with --host once a firewall allows only that relay."""

import signal
import threading

from django.core.management.base import BaseCommand

from subscribers.inbound_smtp import inbound_controller


class Command(BaseCommand):
    help = "Receive bounces, complaints and unsubscribe emails over SMTP."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)
        parser.add_argument("--threads", type=int, default=4, help="database threads handling messages")

    def handle(self, *args, host: str, port: int, threads: int, **options):
        controller = inbound_controller(host, port, threads)
        controller.start()
        self.stdout.write(f"Inbound SMTP on {host}:{port} (Ctrl-C stops)")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        controller.stop()
