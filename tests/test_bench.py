"""The benchmarks still run: each one, tiny, end to end (figures are not asserted: speed lives in `make bench`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env={**os.environ, "READ_DOT_ENV": "false", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_render_bench_runs():
    out = run_bench("render", "--runs", "2", "--recipients", "50", "--cli-runs", "1")
    assert "compile (templates + sanitise + text + mrml)" in out
    assert "sending hot path per recipient" in out


@pytest.mark.worker
def test_send_bench_delivers_every_message(require):
    url, broker = os.environ.get("DATABASE_URL", ""), os.environ.get("CELERY_BROKER_URL", "")
    require(
        url.startswith("postgres") and broker.startswith("redis"),
        "PostgreSQL and Redis (DATABASE_URL, CELERY_BROKER_URL)",
    )
    out = run_bench("send", "--recipients", "300", "--baseline-seconds", "0.5")
    assert "recipients:               300 (delivered to sink: 300)" in out
    assert "ratio to the baseline" in out


def test_import_bench_runs():
    out = run_bench("import", "--rows", "500")
    assert "500" in out


@pytest.mark.worker
def test_api_bench_runs(require):
    url, broker = os.environ.get("DATABASE_URL", ""), os.environ.get("CELERY_BROKER_URL", "")
    require(
        url.startswith("postgres") and broker.startswith("redis"),
        "PostgreSQL and Redis (DATABASE_URL, CELERY_BROKER_URL)",
    )
    out = run_bench("api", "--seconds", "1", "--requests", "50", "--events", "20", "--webhook-workers", "1")
    assert "subscriber read (GET /subscribers/lookup)" in out and "non-2xx 0" in out
    assert "webhook events: 20 recorded" in out and "receiver got 20" in out


def test_inbound_bench_runs():
    out = run_bench("inbound", "--messages", "40", "--connections", "2")
    assert "service (receive_mail)" in out and "SMTP server" in out
    assert "(0 refused)" in out and "2 connections, 0 refused)" in out
