"""factory_boy factories for the compose side: newsletters, articles in the sample's shape, issues."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from newsletter.demo_content import BODY_PARAGRAPH, COMMENTARY_PARAGRAPH
from newsletter.models import Article, Issue, IssueArticle, Newsletter


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ("slug",)

    name = "The Harbour City Daily Brief"
    slug = factory.Sequence(lambda n: f"brief-{n}")
    description = "The stories that matter in Harbour City."
    from_name = "Harbour City Daily Brief"
    from_email = "brief@harbourcity.example"
    postal_address = "Harbour City Chronicle, 12 Quay Street, Harbour City HC1 4AB"


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    headline = factory.Sequence(lambda n: f"Headline number {n} about the harbour")
    slug = factory.Sequence(lambda n: f"story-{n}")
    dek = "A summary sentence that tells the reader why the story matters."
    byline = "Amara Okafor"
    section = "City Hall"
    canonical_url = factory.Sequence(lambda n: f"https://harbourcity.example/news/story-{n}")
    image_url = factory.Sequence(lambda n: f"https://harbourcity.example/media/story-{n}.jpg")
    image_alt = "Passengers boarding a white ferry at the Quay Street terminal"
    key_facts = factory.Sequence(
        lambda n: [f"Fact {n}.{i}: a short sentence with one number, {i * 7}." for i in (1, 2, 3)]
    )
    body_html = factory.LazyFunction(lambda: "".join(f"<p>{BODY_PARAGRAPH}</p>" for _ in range(4)))
    commentary_html = factory.LazyFunction(lambda: "".join(f"<p>{COMMENTARY_PARAGRAPH}</p>" for _ in range(5)))
    bottom_line = factory.Sequence(lambda n: f"Bottom line {n}: the ferries are coming, and the rest must follow.")


class IssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issue

    newsletter = factory.SubFactory(NewsletterFactory)
    subject = factory.Sequence(lambda n: f"Issue {n}: ferries, hospitals and the festival")
    preheader = "Your Harbour City briefing in five minutes."
    intro = "Good morning. Here is what happened."


def issue_with_articles(count: int, **issue_fields) -> Issue:
    issue = IssueFactory(**issue_fields)
    for position in range(count):
        IssueArticle.objects.create(issue=issue, article=ArticleFactory(), position=position)
    return issue


def user_with_perms(username: str, *codenames: str, staff: bool = True):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # fresh instance: no stale permission cache


EDITOR_PERMS = (
    "add_issue", "change_issue", "view_issue", "delete_issue",
    "add_article", "change_article", "view_article",
    "add_issuearticle", "change_issuearticle", "view_issuearticle", "delete_issuearticle",
    "view_newsletter",
)  # fmt: skip
