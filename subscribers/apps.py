from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"

    def ready(self) -> None:
        from config import proxies  # noqa: F401  (registers the proxy settings' deploy check)

        from . import ratelimits, receivers  # noqa: F401  (registers the limits' check; connects anymail's signal)
