"""A newsletter has a language: its issues' fixed words (greeting, headings, footer, unsubscribe wording, date) and
its archive page are in it, whatever the editor's, the reader's or the worker's language."""

import xml.etree.ElementTree as ET

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from newsletter.models import Issue, Newsletter
from newsletter.placeholders import PersonalValues
from newsletter.services.composing import issue_preview
from newsletter.services.rendering import issue_freeze, issue_render
from subscribers.models import Subscriber, Subscription
from tests.factories import NewsletterFactory, issue_with_articles

pytestmark = pytest.mark.django_db

SPANISH = [
    "Hola, ",
    "Ver en el navegador",
    "Gestiona tus preferencias",
    "Darme de baja",
    "porque te suscribiste en",
    "Datos clave",
    "El resto de la noticia",
    "En resumen",
    "Seguir leyendo",
    "de diciembre de 2026",
    "jueves",
]
ENGLISH = ["Hi ", "View in your browser", "Manage your preferences", "Unsubscribe", "because you subscribed",
           "Key facts", "The rest of the story", "The bottom line", "Read more", "3 stories", "December"]  # fmt: skip


def issue_in(language: str, **fields) -> Issue:
    newsletter = NewsletterFactory(language=language, slug=f"brief-{language}")
    issue = issue_with_articles(3, newsletter=newsletter, **fields)
    issue.scheduled_at = timezone.make_aware(timezone.datetime(2026, 12, 3, 7, 0))
    issue.save()
    return issue


def test_a_spanish_newsletter_renders_its_fixed_words_in_spanish_whatever_language_is_active():
    issue = issue_in("es")
    with translation.override("en"):  # the editor's admin, or a worker, in English
        rendered = issue_render(issue, use_cache=False)
    for part in (rendered.html, rendered.text):
        missing = [w for w in SPANISH if w.lower() not in part.lower()]
        assert not missing, missing
        assert not [w for w in ENGLISH if w in part]
    assert 'lang="es"' in rendered.html and "3 noticias" in rendered.html
    preview = issue_preview(issue, PersonalValues("https://n.example/u/", "https://n.example/p/"))
    assert "Hola, lector:" in preview.html and "Hola, lector:" in preview.text  # a reader who gave no name


def test_an_english_newsletter_stays_english_under_a_spanish_request():
    issue = issue_in("en")
    with translation.override("es"):
        rendered = issue_render(issue, use_cache=False)
    assert all(w in rendered.html for w in ENGLISH) and "Ver en el navegador" not in rendered.html
    assert "Hi there," in issue_preview(issue, PersonalValues("u", "p")).text


@pytest.mark.django_db(transaction=True)
def test_sent_issues_speak_their_newsletters_language_over_smtp(smtp_server, start, drain):
    for language, email in (("es", "lectora@example.com"), ("en", "reader@example.com")):
        issue = issue_in(language, subject=f"Issue ({language})")
        if language == "en":
            for n, item in enumerate(issue.items.all()):  # the articles are unique per URL; reuse none
                item.article.canonical_url = f"https://harbourcity.example/en/{n}"
                item.article.save()
        reader = Subscriber.objects.create(email=email, status=Subscriber.Status.ACTIVE)  # no name
        Subscription.objects.create(subscriber=reader, newsletter=issue.newsletter, status="active")
        with translation.override("en" if language == "es" else "es"):  # the worker's language must not leak
            start(issue)
            drain(issue)
    (es,) = smtp_server.to("lectora@example.com")
    (en,) = smtp_server.to("reader@example.com")
    es_text = es.message.get_body(("plain",)).get_content()
    es_html = es.message.get_body(("html",)).get_content()
    assert "Hola, lector:" in es_text and "Darme de baja: " in es_text and "Unsubscribe" not in es_text
    assert "Ver en el navegador" in es_html and "Gestiona tus preferencias" in es_html
    en_text = en.message.get_body(("plain",)).get_content()
    assert "Hi there," in en_text and "Unsubscribe: " in en_text and "Darme de baja" not in en_text


def test_the_archive_page_and_the_web_version_use_the_newsletters_language(client):
    issue = issue_in("es", subject="Número uno")
    issue_freeze(issue)
    issue.status, issue.finished_at = Issue.Status.SENT, timezone.now()
    issue.save()
    empty = NewsletterFactory(language="es", slug="vacio", name="Vacío")

    response = client.get(reverse("newsletter:archive", args=[issue.newsletter.slug]), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response["Content-Language"] == "es" and '<html lang="es">' in page
    assert "Canal RSS" in page and ": archivo</title>" in page and " de 20" in page and "RSS feed" not in page
    page = client.get(reverse("newsletter:archive", args=[empty.slug]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Todavía no se ha enviado ningún número." in page

    web = client.get(reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id]))
    html = web.content.decode()
    assert web["Content-Language"] == "es" and "Hola, lector:" in html and "Ver en el navegador" in html
    assert "Darme de baja" not in html  # the personal links are not on the web version

    english = NewsletterFactory(language="en", slug="english")
    page = client.get(reverse("newsletter:archive", args=[english.slug]), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "No issues have been sent yet." in page


def test_the_feeds_are_in_the_newsletters_language(client):
    newsletter = NewsletterFactory(language="es", slug="feed-es", name="Boletín", description="")
    rss = client.get(reverse("newsletter:feed", args=[newsletter.slug]), HTTP_ACCEPT_LANGUAGE="en")
    channel = ET.fromstring(rss.content).find("channel")
    assert channel.findtext("language") == "es" and channel.findtext("description") == "Números de Boletín"


def test_the_language_is_one_of_the_sites_languages(settings):
    newsletter = Newsletter(name="N", slug="n", from_name="N", from_email="n@example.org", postal_address="1 Row")
    assert newsletter.language == settings.LANGUAGE_CODE
    newsletter.language = "de"
    with pytest.raises(ValidationError, match="language"):
        newsletter.full_clean()
    newsletter.language = "es"
    newsletter.full_clean()


def test_the_digest_layout_and_the_sponsor_block_speak_the_newsletters_language_too():
    newsletter = NewsletterFactory(language="es", slug="resumen", template="digest")
    issue = issue_with_articles(
        2, newsletter=newsletter, sponsor_name="Librería Sol", sponsor_url="https://sol.example/"
    )
    issue.scheduled_at = timezone.make_aware(timezone.datetime(2026, 12, 3, 7, 0))
    issue.save()
    with translation.override("en"):
        rendered = issue_render(issue, use_cache=False)
    words = ["Hola, ", "Ver en el navegador", "Gestiona tus preferencias", "Darme de baja", "porque te suscribiste en",
             "de diciembre de 2026", "Patrocinado por"]  # fmt: skip
    for part in (rendered.html, rendered.text):
        assert not [w for w in words if w.lower() not in part.lower()]
        assert not [w for w in ("Hi ", "Sponsored by", "View in your browser", "Unsubscribe", "December") if w in part]
    assert "Leer" in rendered.html and "Read &rarr;" not in rendered.html


def test_the_feature_layouts_sponsor_block_is_translated():
    issue = issue_in("es", sponsor_name="Librería Sol", sponsor_url="https://sol.example/")
    rendered = issue_render(issue, use_cache=False)
    assert 'Patrocinado por <a href="https://sol.example/"' in rendered.html
    assert "PATROCINADO POR LIBRERÍA SOL" in rendered.text
