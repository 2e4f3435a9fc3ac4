"""django-anymail's tracking signal: an ESP's own open and click events, counted with its bot flags. Connected
in EngagementConfig.ready()."""

from anymail.signals import tracking
from django.dispatch import receiver

from .services.esp import esp_event_count


@receiver(tracking, dispatch_uid="engagement.esp_event_count")
def tracking_event_received(sender, event, esp_name: str, **kwargs) -> None:
    esp_event_count(event, esp_name)
