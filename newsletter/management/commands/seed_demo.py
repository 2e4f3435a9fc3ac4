from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.html import escape

from newsletter import demo_content
from newsletter.demo_images import demo_logo, demo_picture
from newsletter.models import Article, Issue, IssueArticle, Newsletter
from newsletter.roles import roles_ensure
from newsletter.services.images import image_upload
from subscribers.models import ConsentEvent, Subscriber, Subscription

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "masthead-demo"  # local demo only: printed on purpose, never created when DEBUG is off


def _paragraphs(paragraphs: list[str]) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in paragraphs)


class Command(BaseCommand):
    help = "Load demo content: a newsletter, articles, a draft issue, editor groups and a local admin. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--no-admin", action="store_true", help="Do not create the local admin account.")

    @transaction.atomic
    def handle(self, no_admin: bool = False, **options):
        newsletter, _ = Newsletter.objects.get_or_create(
            slug=demo_content.NEWSLETTER["slug"], defaults=demo_content.NEWSLETTER
        )
        articles = []
        for data in demo_content.ARTICLES:
            fields = {k: v for k, v in data.items() if k not in ("body", "commentary")}
            fields["body_html"] = _paragraphs(data["body"])
            fields["commentary_html"] = _paragraphs(data["commentary"])
            article, _ = Article.objects.get_or_create(canonical_url=data["canonical_url"], defaults=fields)
            if article.image_id is None:
                # The demo's own pictures, drawn now: the newsroom URLs in demo_content do not exist.
                article.image = image_upload(demo_picture(article.slug), alt_text=article.image_alt, title=article.slug)
                article.image_url = ""
                article.save(update_fields=["image", "image_url", "updated_at"])
            articles.append(article)
        if newsletter.logo_id is None:
            newsletter.logo = image_upload(demo_logo(newsletter.name), alt_text=newsletter.name, title="Demo logo")
            newsletter.header_text = newsletter.header_text or "Harbour City's morning briefing"
            newsletter.save(update_fields=["logo", "header_text"])

        issue, created = Issue.objects.get_or_create(
            newsletter=newsletter, subject=demo_content.ISSUE["subject"], defaults=demo_content.ISSUE
        )
        if created:
            # Grouped under section headings, as an editor would lay it out.
            IssueArticle.objects.bulk_create(
                IssueArticle(issue=issue, article=article, position=i, section=article.section)
                for i, article in enumerate(articles)
            )

        self._readers(newsletter)
        roles_ensure()  # the migration made them; kept in step with newsletter/roles.py
        if no_admin:
            pass
        elif settings.DEBUG:
            self._admin()
        else:
            self.stdout.write("Skipping the demo admin account: DEBUG is off (use createsuperuser).")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo content ready: {newsletter.name}, {len(articles)} articles, draft issue #{issue.pk}."
            )
        )

    def _readers(self, newsletter: Newsletter) -> None:
        """A few confirmed demo readers at example.com, so a send has somewhere to go."""
        for n in range(1, 6):
            subscriber, created = Subscriber.objects.get_or_create(
                email=f"reader{n}@example.com",
                defaults={"name": f"Reader {n}", "status": Subscriber.Status.ACTIVE, "source": "import"},
            )
            if created:
                Subscription.objects.create(
                    subscriber=subscriber, newsletter=newsletter, status=Subscription.Status.ACTIVE
                )
                ConsentEvent.objects.create(
                    subscriber=subscriber,
                    newsletter=newsletter,
                    kind=ConsentEvent.Kind.IMPORT,
                    source=ConsentEvent.Source.IMPORT,
                    detail="demo seed",
                )

    def _admin(self) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=ADMIN_USERNAME,
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@localhost"},
        )
        if created:
            user.set_password(ADMIN_PASSWORD)
            user.save()
        self.stdout.write(f"Admin login: {ADMIN_USERNAME} / {ADMIN_PASSWORD}  (http://localhost:8000/admin/)")
