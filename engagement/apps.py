from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    verbose_name = "Engagement reports"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  anymail's tracking events
