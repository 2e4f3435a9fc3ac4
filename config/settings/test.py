"""Test settings: base plus what makes tests fast and hermetic. DATABASE_URL / CELERY_BROKER_URL still apply."""

import os

os.environ["READ_DOT_ENV"] = "false"  # a developer's .env must not leak into tests
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghijklmnop")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from .base import *  # noqa: E402,F403
from .base import CELERY_BROKER_URL, DATABASES, VAR_DIR, filesystem_broker_options  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that a real worker process sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if CELERY_BROKER_URL.startswith("filesystem"):
    # Its own folder, so a test never feeds a developer's running worker (or the reverse).
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(VAR_DIR / "test-broker")
# Uploaded images made by tests stay out of a developer's var/media.
MEDIA_ROOT = VAR_DIR / "test-media"
