"""Masthead settings: every value comes from the environment, read here and nowhere else.

A `.env` file in the project root is read too (``make run`` writes one for local development).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from js_asset import static_lazy

from newsletter.conf import masthead_from_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if env.bool("READ_DOT_ENV", default=True):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Local state: SQLite, the filesystem broker, the rate-limit file, caught mail.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY in the environment "
            "(for example: SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')), "
            "or set DEBUG=true for local development (`make run` writes a .env that does)."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"
# Old keys keep signed links (unsubscribe, preferences) valid across a rotation.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prose_editor",
    "anymail",
    "newsletter",
    "subscribers",
    "automations",
    "api",
    "engagement",
]

MIDDLEWARE = [
    "config.proxies.TrustedProxyMiddleware",  # first: every later layer sees the client's address
    "config.request_guards.Utf8BodyMiddleware",  # before anything decodes a body: UTF-8 or a plain 400
    "config.request_guards.PublicFormLimitMiddleware",  # public forms: small bodies, no files
    "config.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'masthead.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Without CELERY_BROKER_URL, kombu's filesystem transport: no server needed, one machine only.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
# Redis shares rate-limit buckets and the cache between machines; absent, both stay on this machine.
REDIS_URL = env.str("REDIS_URL", default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "")
CACHES = {"default": env.cache("CACHE_URL", default=REDIS_URL or f"filecache://{VAR_DIR / 'cache'}")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
# The languages reader pages and emails are offered in (a catalogue per language in locale/).
LANGUAGES = [("en", "English"), ("es", "Español")]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded images (originals and email renditions) go through Django's storage API: the filesystem under
# MEDIA_ROOT by default, or any backend named by STORAGE_BACKEND (django-storages' S3 for an S3-compatible store),
# configured with STORAGE_OPTIONS as KEY=value pairs (see the README's "Images and storage").
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")


def storage_options(raw: dict[str, str]) -> dict:
    """STORAGE_OPTIONS values arrive as strings; booleans and integers are what storage backends expect."""
    words = {"true": True, "false": False, "none": None}
    return {k: words.get(v.lower(), int(v) if v.isdigit() else v) for k, v in raw.items()}


STORAGES = {
    "default": {
        "BACKEND": env.str("STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": storage_options(env.dict("STORAGE_OPTIONS", default={})),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# The article editor's own extension (a Word paste cleaner); it adds no tags, the sanitiser decides those.
DJANGO_PROSE_EDITOR_EXTENSIONS = [
    {
        "js": [static_lazy("newsletter/admin/office_paste.js")],
        "extensions": {"OfficePaste": lambda config, shared: None},
    }
]

# --- Email -------------------------------------------------------------------------------------
# EMAIL_URL (smtp://user:pass@host:587/?tls=True) or the usual EMAIL_* variables; EMAIL_BACKEND may name
# any Django backend, django-anymail's included (configure it through ANYMAIL_* variables).
_email = env.email_url("EMAIL_URL", default="smtp://127.0.0.1:1025") if env.str("EMAIL_URL", default="") else {}
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default=_email.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
)
EMAIL_HOST = env.str("EMAIL_HOST", default=_email.get("EMAIL_HOST", "127.0.0.1"))
EMAIL_PORT = env.int("EMAIL_PORT", default=_email.get("EMAIL_PORT", 1025))
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default=_email.get("EMAIL_HOST_USER", ""))
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default=_email.get("EMAIL_HOST_PASSWORD", ""))
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Masthead <newsletter@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ANYMAIL = env.dict("ANYMAIL", default={})
# Domain used for Message-ID and List-Id; defaults to the SITE_URL host.
MAIL_DOMAIN = env.str("MAIL_DOMAIN", default=SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0])
DKIM_PRIVATE_KEY_FILE = env.str("DKIM_PRIVATE_KEY_FILE", default="")
DKIM_SELECTOR = env.str("DKIM_SELECTOR", default="masthead")
DKIM_DOMAIN = env.str("DKIM_DOMAIN", default="")

# --- Celery ------------------------------------------------------------------------------------


def filesystem_broker_options(folder: Path) -> dict:
    """kombu's filesystem transport needs its folders to exist before a worker or a producer touches them."""
    for sub in ("queue", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


CELERY_BROKER_TRANSPORT_OPTIONS = (
    filesystem_broker_options(VAR_DIR / "broker")
    if CELERY_BROKER_URL.startswith("filesystem")
    # Longer than any task can run (time limits are far shorter), so Redis never redelivers a running task.
    else {"visibility_timeout": 3600}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker process keeps its database connection for this many tasks (Celery closes it after each task without
# it); CONN_MAX_AGE and the health check still apply between tasks (config/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
CELERY_TASK_DEFAULT_QUEUE = "default"
# "priority" carries test sends and confirmation emails so a big issue never delays them; "bulk" carries issue batches.
CELERY_TASK_ROUTES = {
    "newsletter.send_batch": {"queue": "bulk"},
    "newsletter.send_test": {"queue": "priority"},
    "newsletter.send_welcome": {"queue": "priority"},
    "subscribers.*": {"queue": "priority"},
    "api.*": {"queue": "default"},
    "engagement.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "newsletter-heartbeat": {"task": "newsletter.heartbeat", "schedule": 30.0},
    "automations-digests": {"task": "automations.run_digests", "schedule": 60.0},
    "newsletter-recover": {
        "task": "newsletter.recover",
        "schedule": env.float("RECOVERY_INTERVAL", default=5.0),
    },
    "api-prune": {"task": "api.prune", "schedule": 3600.0},
    # Due webhook deliveries (first tries whose queue message was lost, retries, expired leases).
    "api-webhooks-dispatch": {
        "task": "api.webhooks_dispatch",
        "schedule": env.float("WEBHOOK_POLL_INTERVAL", default=10.0),
    },
    # Queued clicks and opens into the counts; per-reader events past their retention period.
    "engagement-flush": {"task": "engagement.flush", "schedule": env.float("ENGAGEMENT_FLUSH_SECONDS", default=5.0)},
    "engagement-retention": {"task": "engagement.retention", "schedule": 3600.0},
    "engagement-snapshots": {"task": "engagement.snapshots", "schedule": 300.0},
}
CELERY_TIMEZONE = TIME_ZONE

# --- Masthead ----------------------------------------------------------------------------------
# Every Masthead setting (name, type, default, meaning) is declared once, in newsletter/conf.py, and read from the
# environment variable of the same name here. Code reads them as `newsletter.conf.app_settings.NAME`.
MASTHEAD = masthead_from_env(env)

# --- Security ----------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=False) else None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # the admin's email preview opts in to same-origin framing per view
# HSTS preload is hard to undo, so it is the operator's choice (SECURE_HSTS_PRELOAD=true), not a default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # flufl.bounce logs every detector it runs at INFO, and a detector's crash with its traceback before raising
    # it (subscribers/services/inbound/parse.py handles that and logs the outcome itself).
    "loggers": {"django.db.backends": {"level": "WARNING"}, "flufl.bounce": {"level": "CRITICAL"}},
}
