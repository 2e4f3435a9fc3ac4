"""Composing: sections, the sponsor block, branding and the digest layout in the render; the pre-send checklist and
how it blocks a send at every door; adding articles by search from the issue page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Image, Issue, IssueArticle
from newsletter.services import sending
from newsletter.services.composing import issue_checklist
from newsletter.services.images import image_upload
from newsletter.services.rendering import IssueNotReady, issue_freeze, issue_render
from tests.factories import ArticleFactory, issue_with_articles, picture_upload, user_with_perms

pytestmark = pytest.mark.django_db


def sectioned_issue(**fields) -> Issue:
    issue = issue_with_articles(4, **fields)
    for item, heading in zip(issue.items.order_by("position"), ["City hall", "City hall", "Health", ""], strict=True):
        item.section = heading
        item.save()
    return issue


@pytest.mark.parametrize("layout", ["default", "digest"])
def test_articles_sit_under_their_section_headings_in_order(layout):
    issue = sectioned_issue(newsletter__template=layout)
    rendered = issue_render(issue)
    html, text = rendered.html, rendered.text
    headlines = [i.article.headline for i in issue.items.order_by("position")]
    assert html.count(">City hall</h2>") == 1 and html.count(">Health</h2>") == 1
    order = [html.index(">City hall</h2>"), html.index(headlines[0]), html.index(headlines[1]),
             html.index(">Health</h2>"), html.index(headlines[2]), html.index(headlines[3])]  # fmt: skip
    assert order == sorted(order)
    assert text.index("CITY HALL") < text.index(headlines[0]) < text.index("HEALTH") < text.index(headlines[2])


@pytest.mark.parametrize("layout", ["default", "digest"])
def test_branding_and_sponsor_show_in_every_layout(layout, media_root):
    issue = sectioned_issue(
        newsletter__template=layout,
        sponsor_name="Quay Street Bakery",
        sponsor_url="https://bakery.example/",
        sponsor_text="Fresh bread from 6 a.m.",
    )
    newsletter = issue.newsletter
    newsletter.accent_colour = "#0b6e4f"
    newsletter.header_text = "Your morning in Harbour City"
    newsletter.footer_text = "Written by the Chronicle newsroom."
    newsletter.logo = image_upload(picture_upload("logo.png", width=400, height=120, fmt="PNG"))
    newsletter.save()

    rendered = issue_render(issue)
    assert "#0b6e4f" in rendered.html and "#a3231b" not in rendered.html
    assert "Your morning in Harbour City" in rendered.html and "Your morning in Harbour City" in rendered.text
    assert "Written by the Chronicle newsroom." in rendered.html and "Written by the Chronicle" in rendered.text
    assert f'alt="{newsletter.name}"' in rendered.html and newsletter.logo.email_600.name in rendered.html
    assert "Sponsored by" in rendered.html and "https://bakery.example/" in rendered.html
    assert "Fresh bread from 6 a.m." in rendered.text


def test_the_preview_follows_every_branding_and_section_change():
    issue = sectioned_issue()
    first = issue_render(issue).html
    issue.newsletter.header_text = "A new tagline"
    issue.newsletter.save()
    second = issue_render(Issue.objects.get(pk=issue.pk)).html
    assert "A new tagline" in second and second != first
    IssueArticle.objects.filter(issue=issue, section="Health").update(section="Wellbeing")
    assert ">Wellbeing</h2>" in issue_render(Issue.objects.get(pk=issue.pk)).html
    newsletter = issue.newsletter
    newsletter.template = "digest"
    newsletter.save()
    assert issue_render(Issue.objects.get(pk=issue.pk)).html != second


def test_an_uploaded_article_image_goes_out_at_600_px_with_a_2x_rendition_and_its_alt(media_root, settings):
    image = image_upload(picture_upload(width=1800, height=1000), alt_text="Ferry at the Quay Street terminal")
    article = ArticleFactory(image=image, image_url="", image_alt="")
    issue = issue_with_articles(0)
    IssueArticle.objects.create(issue=issue, article=article, position=1)
    html = issue_render(issue).html
    src = f"{settings.SITE_URL}/media/{image.email_600.name}"
    assert f'src="{src}"' in html
    assert f"{settings.SITE_URL}/media/{image.email_1200.name} 2x" in html
    assert 'alt="Ferry at the Quay Street terminal"' in html


# --- the checklist ---------------------------------------------------------------------------------------------


def items(issue):
    return {item.key: item for item in issue_checklist(Issue.objects.get(pk=issue.pk)).items}


def test_a_clean_issue_passes_every_check():
    checks = items(issue_with_articles(2))
    assert all(item.ok for item in checks.values()), checks


def test_images_without_alt_text_block_the_send_at_every_door(smtp_server):
    issue = issue_with_articles(2)
    bare = ArticleFactory(image_url="https://harbourcity.example/media/pier.jpg", image_alt="")
    inline = ArticleFactory(body_html='<p>Look: <img src="https://harbourcity.example/media/map.png"></p>')
    IssueArticle.objects.create(issue=issue, article=bare, position=5)
    IssueArticle.objects.create(issue=issue, article=inline, position=6)

    check = items(issue)["alt_text"]
    assert not check.ok and check.blocking
    assert check.details == [
        f"No alt text: https://harbourcity.example/media/pier.jpg (article “{bare.headline}”)",
        f"No alt text: https://harbourcity.example/media/map.png (article “{inline.headline}”)",
    ]
    with pytest.raises(sending.SendError, match=r"2 image\(s\) without alt text"):
        sending.issue_send_now(issue)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT and not issue.frozen_at
    with pytest.raises(IssueNotReady):
        issue_freeze(issue)


def test_links_that_are_not_web_addresses_block_and_unknown_site_pages_warn(settings):
    settings.SITE_URL = "https://news.example.org"
    article = ArticleFactory(
        body_html='<p><a href="/news/relative">a</a> <a href="#top">b</a> '
        '<a href="mailto:desk@example.org">c</a> <a href="https://news.example.org/no-such-page/">d</a> '
        '<a href="https://news.example.org/subscribe/x/">e</a> <a href="https://other.example/">f</a></p>'
    )
    issue = issue_with_articles(0)
    IssueArticle.objects.create(issue=issue, article=article, position=1)
    checks = items(issue)
    assert checks["links"].details == [
        "/news/relative is not a web address (links in an email need https://…)",
        "#top is not a web address (links in an email need https://…)",
    ]
    assert checks["links"].blocking
    assert checks["site_links"].details == ["https://news.example.org/no-such-page/ is not a page of this site"]
    assert not checks["site_links"].blocking


def test_a_missing_postal_address_blocks_and_size_over_gmails_limit_only_warns():
    issue = issue_with_articles(40, newsletter__postal_address="")
    checks = items(issue)
    assert not checks["postal_address"].ok and checks["postal_address"].blocking
    assert not checks["size"].ok and not checks["size"].blocking
    assert "Gmail clips past 102 KB" in checks["size"].label


def test_the_send_page_shows_the_checklist_and_disables_sending_while_it_blocks(client):
    issue = issue_with_articles(1, newsletter__postal_address="")
    user = user_with_perms("sender", "view_issue", "change_issue", "send_issue")
    client.force_login(user)
    page = client.get(reverse("admin:newsletter_issue_send", args=[issue.pk])).content.decode()
    assert 'data-testid="check-postal_address" data-ok="false"' in page
    assert 'data-testid="send-now" disabled' in page
    response = client.post(reverse("admin:newsletter_issue_send_schedule", args=[issue.pk]),
                           {"when": "2099-01-01T06:00"}, follow=True)  # fmt: skip
    assert "Not scheduled: the pre-send checklist found" in response.content.decode()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT


# --- adding articles by search ---------------------------------------------------------------------------------


def test_an_editor_finds_articles_by_search_and_adds_one_under_a_section(client):
    issue = issue_with_articles(1)
    wanted = ArticleFactory(headline="Lighthouse keepers strike", section="Labour", tags="harbour, unions")
    ArticleFactory(headline="Bakery wins prize", section="Food")
    client.force_login(user_with_perms("editor", "view_issue", "change_issue"))
    search = reverse("admin:newsletter_issue_article_search", args=[issue.pk])

    fragment = client.get(search, {"q": "lighthouse unions", "fragment": "1"}).content.decode()
    assert "Lighthouse keepers strike" in fragment and "Bakery" not in fragment
    assert client.get(search, {"q": "lighthouse"}).status_code == 200  # the page without JavaScript

    add = reverse("admin:newsletter_issue_article_add", args=[issue.pk])
    assert client.get(add).status_code == 405
    response = client.post(add, {"article": wanted.pk, "section": "On the water"}, follow=True)
    assert "Added “Lighthouse keepers strike” under “On the water”." in response.content.decode()
    item = issue.items.get(article=wanted)
    assert (item.position, item.section) == (2, "On the water")
    # Already in the issue: not listed again, and a second add says so.
    assert "Lighthouse" not in client.get(search, {"q": "lighthouse", "fragment": "1"}).content.decode()
    response = client.post(add, {"article": wanted.pk}, follow=True)
    assert "is already in this issue" in response.content.decode()


def test_adding_needs_change_permission_and_a_draft(client):
    issue = issue_with_articles(1)
    article = ArticleFactory()
    client.force_login(user_with_perms("viewer", "view_issue"))
    add = reverse("admin:newsletter_issue_article_add", args=[issue.pk])
    assert client.post(add, {"article": article.pk}).status_code == 403
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.CANCELLED, frozen_at=timezone.now())
    client.force_login(user_with_perms("editor2", "view_issue", "change_issue"))
    assert client.post(add, {"article": article.pk}).status_code == 403  # not editable: no change permission
    assert not issue.items.filter(article=article).exists()


# --- the admin forms -------------------------------------------------------------------------------------------


def test_the_newsletter_form_offers_every_layout_and_saves_branding_with_an_uploaded_logo(admin_client, media_root):
    newsletter = issue_with_articles(1).newsletter
    url = reverse("admin:newsletter_newsletter_change", args=[newsletter.pk])
    page = admin_client.get(url).content.decode()
    assert '<option value="default" selected>' in page and '<option value="digest">' in page
    data = {
        "name": newsletter.name, "slug": newsletter.slug, "from_name": "Desk", "from_email": "desk@example.org",
        "template": "digest", "accent_colour": "#123456", "header_text": "Mornings", "footer_text": "",
        "postal_address": "1 Quay Street", "archive_public": "on", "language": "en",
        "guard_hard_bounce_percent": 2, "guard_complaint_percent": 0.1, "tracking_mode": "aggregate",
        "logo_upload": picture_upload("logo.png", width=300, height=100, fmt="PNG"),
    }  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    newsletter.refresh_from_db()
    assert (newsletter.template, newsletter.accent_colour, newsletter.header_text) == ("digest", "#123456", "Mornings")
    assert newsletter.logo.alt_text == newsletter.name and newsletter.logo.email_600

    data.update(accent_colour="red", logo_upload=SimpleUploadedFile("logo.png", b"not a png"), postal_address="")
    page = admin_client.post(url, data).content.decode()
    assert "A colour as #rrggbb" in page and "not an image that can be read" in page
    assert "This field is required" in page  # the postal address


def test_an_image_uploaded_in_the_admin_gets_its_renditions(admin_client, media_root):
    response = admin_client.post(
        reverse("admin:newsletter_image_add"),
        {"upload": picture_upload("pier.jpg"), "title": "Pier", "alt_text": "The old pier at low tide"},
    )
    assert response.status_code == 302
    image = Image.objects.get()
    assert image.alt_text == "The old pier at low tide" and image.email_1200 and image.uploaded_by.is_superuser
    page = admin_client.get(reverse("admin:newsletter_image_change", args=[image.pk])).content.decode()
    assert image.email_600.name in page
    missing = admin_client.post(reverse("admin:newsletter_image_add"), {"title": "x"}).content.decode()
    assert "Choose an image file to upload." in missing


def test_a_markdown_body_is_shown_generated_not_edited_and_the_editor_takes_over_when_it_is_emptied(admin_client):
    article = ArticleFactory(body_markdown="Some *Markdown*.", body_html="<p>Some <em>Markdown</em>.</p>")
    url = reverse("admin:newsletter_article_change", args=[article.pk])
    response = admin_client.get(url)
    form = response.context["adminform"].form
    assert form.fields["body_html"].disabled and "data-django-prose-editor" not in str(form["body_html"])
    data = {name: form[name].value() or "" for name in form.fields if name != "image_upload"}
    data.update(key_facts="\n".join(article.key_facts), image="", body_html="<p>Ignored: the field is disabled</p>")
    published = timezone.localtime(article.published_at)
    data.update(published_at_0=published.strftime("%Y-%m-%d"), published_at_1=published.strftime("%H:%M:%S"))
    data["body_markdown"] = "Edited *Markdown*."
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    article.refresh_from_db()
    assert (article.body_markdown, article.body_html) == ("Edited *Markdown*.", "<p>Edited <em>Markdown</em>.</p>")

    data["body_markdown"] = ""
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    article.refresh_from_db()
    assert (article.body_markdown, article.body_html) == ("", "<p>Edited <em>Markdown</em>.</p>")
    form = admin_client.get(url).context["adminform"].form
    assert "data-django-prose-editor" in str(form["body_html"])


def test_an_uploaded_image_without_alt_blocks_until_its_alt_is_written(media_root):
    image = image_upload(picture_upload("quay.jpg"))
    article = ArticleFactory(image=image, image_url="", image_alt="")
    issue = issue_with_articles(0)
    IssueArticle.objects.create(issue=issue, article=article, position=1)
    check = items(issue)["alt_text"]
    assert not check.ok and check.details[0].endswith(f"-600.jpg (article “{article.headline}”)")

    image.alt_text = "Boats moored along the quay"
    image.save()  # the cached render follows the image's edit
    assert items(issue)["alt_text"].ok
    assert 'alt="Boats moored along the quay"' in issue_render(Issue.objects.get(pk=issue.pk)).html
