from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"

    def ready(self) -> None:
        from config import csp, proxies  # noqa: F401  (register the SITE_URL and proxy settings' deploy checks)

        from . import ratelimits, receivers  # noqa: F401  (registers the limits' check; connects anymail's signal)
