import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django_application = get_wsgi_application()

from engagement.fastpath import TrackingFastPath  # noqa: E402  (after Django is set up)

# Tracked-link redirects are answered before Django's middleware; everything else is Django.
application = TrackingFastPath(django_application)
