"""Benchmark: import a 100,000-row subscriber CSV (rows/s), then import the same file again (all known).

    python -m bench.import_subscribers [--rows N] [--batch N]

Runs against a throwaway test database created beside the configured one (DATABASE_URL, or SQLite), migrated
for the run and dropped afterwards, so production data is never touched. About 1 % of the rows are invalid
and 1 % duplicates, as in a real export.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,name\n")
        for i in range(rows):
            if i % 100 == 37:
                f.write(f"broken-address-{i},Broken {i}\n")
            elif i % 100 == 73:
                f.write(f"Reader{i - 1}@Example.com,Duplicate {i}\n")
            else:
                f.write(f"reader{i}@example.com,Reader {i}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=None, help="rows per transaction (default: the service's)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from newsletter.models import Newsletter
    from subscribers.models import Subscriber
    from subscribers.services.importing import BATCH_SIZE, subscribers_import

    setup_test_environment()
    # Its own throwaway database, never the test suite's (which may be in use while this runs).
    db = connection.settings_dict
    name = (
        f"{db['NAME']}_bench_import"
        if connection.vendor != "sqlite"
        else str(settings.VAR_DIR / "bench-import.sqlite3")
    )
    db["TEST"] = {**db.get("TEST", {}), "NAME": name}
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        newsletter = Newsletter.objects.create(
            name="Bench", slug="bench", from_name="Bench", from_email="bench@example.org", postal_address="-"
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "subscribers.csv"
            write_csv(path, args.rows)
            size_mb = path.stat().st_size / 1e6
            print(f"{connection.vendor}, {args.rows:,} rows ({size_mb:.1f} MB), batch {args.batch or BATCH_SIZE}")
            for label in ("first import", "same file again"):
                started = time.perf_counter()
                with path.open("rb") as stream:
                    report = subscribers_import(stream, newsletter, batch_size=args.batch or BATCH_SIZE)
                elapsed = time.perf_counter() - started
                print(
                    f"{label:>16}: {elapsed:6.2f} s  {args.rows / elapsed:>9,.0f} rows/s  "
                    f"(imported {report.imported:,}, unchanged {report.unchanged:,}, "
                    f"rejected {len(report.rejected):,})"
                )
        print(f"subscribers in the database: {Subscriber.objects.count():,}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
