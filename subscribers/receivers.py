"""django-anymail tracking signal → a recorded MailEvent → a task. Connected in SubscribersConfig.ready()."""

from anymail.signals import tracking
from django.dispatch import receiver

from .services.bounces import mail_event_record


@receiver(tracking, dispatch_uid="subscribers.mail_event_record")
def tracking_event_received(sender, event, esp_name: str, **kwargs) -> None:
    mail_event_record(event, esp_name)
