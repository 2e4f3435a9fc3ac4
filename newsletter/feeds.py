"""RSS and Atom feeds of a newsletter's sent issues (the public archive in feed form)."""

from django.contrib.syndication.views import Feed
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from .models import Issue, Newsletter
from .services.archive import archive_issues

FEED_LENGTH = 30


class IssuesRssFeed(Feed):
    def get_object(self, request, newsletter: str) -> Newsletter:
        obj = get_object_or_404(Newsletter, slug=newsletter)
        if not obj.archive_public:
            raise Http404("This newsletter has no public archive.")
        return obj

    def get_feed(self, obj: Newsletter, request):
        # In the newsletter's language, like its issues and archive page: the feed's language tag and wording.
        with translation.override(obj.language):
            return super().get_feed(obj, request)

    def title(self, obj: Newsletter) -> str:
        return obj.name

    def link(self, obj: Newsletter) -> str:
        return reverse("newsletter:archive", args=[obj.slug])

    def description(self, obj: Newsletter) -> str:
        return obj.description or _("Issues of %(name)s") % {"name": obj.name}

    def items(self, obj: Newsletter):
        return archive_issues(obj).select_related("newsletter")[:FEED_LENGTH]

    def item_title(self, item: Issue) -> str:
        return item.frozen_subject or item.subject

    def item_description(self, item: Issue) -> str:
        return item.preheader or item.intro

    def item_link(self, item: Issue) -> str:
        return reverse("newsletter:issue", args=[item.newsletter.slug, item.public_id])

    def item_pubdate(self, item: Issue):
        return item.finished_at or item.frozen_at

    def item_guid(self, item: Issue) -> str:
        return f"urn:uuid:{item.public_id}"

    item_guid_is_permalink = False


class IssuesAtomFeed(IssuesRssFeed):
    feed_type = Atom1Feed
    subtitle = IssuesRssFeed.description
