from django.apps import AppConfig
from django.db.models.signals import post_migrate


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletters"

    def ready(self):
        from .roles import roles_grant_missing

        # No sender: every app's signal, so a role gains a later app's permissions once they are created.
        post_migrate.connect(roles_grant_missing, dispatch_uid="newsletter.roles_grant_missing")
