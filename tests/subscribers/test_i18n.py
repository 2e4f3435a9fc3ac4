"""Reader pages and emails in another language: Spanish pages by Accept-Language or the language switch, the
confirmation email in the signup page's language, and a catalogue that covers every reader-facing string."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Engine
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.test import Client

from subscribers.models import Subscriber
from subscribers.tasks import confirmation_send_task

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "es" / "LC_MESSAGES"
# Pages and emails a reader sees (devmail.html is the developer's mail catcher, in English on purpose).
READER_TEMPLATES = [
    p
    for folder in ("templates/subscribers", "templates/site", "templates/email", "templates/newsletter")
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in {".html", ".txt"} and p.name != "devmail.html"
] + [ROOT / "templates" / "engagement" / "unknown_link.html"]  # the rest of templates/engagement is the admin's
READER_MODULES = [
    "subscribers/forms.py",
    "subscribers/views.py",
    "subscribers/services/emails.py",
    "newsletter/placeholders.py",
    "newsletter/feeds.py",
    "engagement/services/consent.py",
]
GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}


def spanish(client: Client, path: str) -> str:
    response = client.get(path, headers={"accept-language": "es"})
    assert response.status_code == 200
    return response.content.decode()


def test_accept_language_es_gets_the_spanish_signup_page(client, newsletter):
    html = spanish(client, f"/subscribe/{newsletter.slug}/")
    assert '<html lang="es">' in html
    assert "Suscríbete a Daily Brief" in html
    assert "Correo electrónico" in html and "Nombre (opcional)" in html
    assert "Acepto recibir Daily Brief por correo electrónico" in html and "política de privacidad" in html
    assert "Subscribe to" not in html and "Email address" not in html


def test_spanish_form_errors(client, newsletter):
    data = {"email": "not-an-address", "name": "", "website": ""}  # no consent either
    response = client.post(f"/subscribe/{newsletter.slug}/", data, headers={"accept-language": "es"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Corrige los campos marcados" in html
    assert "Escribe una dirección de correo válida" in html
    assert "Marca la casilla para dar tu consentimiento" in html


def test_english_stays_the_default(client, newsletter):
    html = client.get(f"/subscribe/{newsletter.slug}/", headers={"accept-language": "de"}).content.decode()
    assert '<html lang="en">' in html and "Subscribe to Daily Brief" in html


def test_language_switch_is_a_csrf_protected_post_that_comes_back(newsletter):
    client = Client(enforce_csrf_checks=True)
    path = f"/subscribe/{newsletter.slug}/"
    html = client.get(path).content.decode()
    form = re.search(r'<form action="(/i18n/setlang/)" method="post">(.*?)</form>', html, re.S)
    assert form, "the language switch form is on the page"
    assert 'name="language" value="es"' in form.group(2) and ">Español</button>" in form.group(2)
    assert 'value="en" lang="en" aria-current="true"' in form.group(2)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2)).group(1)

    assert client.post(form.group(1), {"language": "es", "next": path}).status_code == 403  # no token: refused
    response = client.post(form.group(1), {"language": "es", "next": path, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == path
    html = client.get(path).content.decode()
    assert "Suscríbete a Daily Brief" in html and 'value="es" lang="es" aria-current="true"' in html
    # GET on the switch changes nothing (Django's set_language only redirects).
    client.get(form.group(1) + "?language=en&next=" + path)
    assert "Suscríbete a Daily Brief" in client.get(path).content.decode()


def test_confirmation_email_is_in_the_language_of_the_signup_page(client, newsletter, smtp_server):
    data = {"email": "lectora@example.com", "name": "Ada", "consent": "on", "website": ""}
    client.post(f"/subscribe/{newsletter.slug}/", data, headers={"accept-language": "es"})
    spanish_reader = Subscriber.objects.get()
    assert spanish_reader.language == "es"
    english = Client()
    english.post(f"/subscribe/{newsletter.slug}/", {**data, "email": "reader@example.com"})
    english_reader = Subscriber.objects.get(email="reader@example.com")

    assert confirmation_send_task(spanish_reader.pk, newsletter.pk) == "confirm"
    assert confirmation_send_task(english_reader.pk, newsletter.pk) == "confirm"
    (es_mail,) = smtp_server.to("lectora@example.com")
    msg = es_mail.message
    assert msg["Subject"] == "Confirma tu suscripción a Daily Brief"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith("Hola, Ada:") and "Alguien, seguramente tú, ha pedido recibir Daily Brief" in text
    assert '<html lang="es">' in html and "Confirmar mi suscripción" in html
    # The worker's language doesn't leak into the next email: the English reader gets English.
    (en_mail,) = smtp_server.to("reader@example.com")
    assert en_mail.message["Subject"] == "Please confirm your subscription to Daily Brief"
    assert '<html lang="en">' in en_mail.message.get_body(("html",)).get_content()


def _template_msgids(path: Path) -> set[tuple[str, str | None]]:
    """Every (msgid, plural) a template marks for translation, read the way Django itself parses the tags."""
    engine = Engine.get_default()
    nodelist = engine.from_string(path.read_text(encoding="utf-8")).nodelist
    found = set()
    for node in nodelist.get_nodes_by_type(TranslateNode):
        found.add((str(node.filter_expression.var.literal), None))
    for node in nodelist.get_nodes_by_type(BlockTranslateNode):
        singular = node.render_token_list(node.singular)[0]
        plural = node.render_token_list(node.plural)[0] if node.plural else None
        found.add((singular, plural))
    return found


def _python_msgids(path: Path) -> set[tuple[str, str | None]]:
    found = set()
    for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(call, ast.Call):
            continue
        name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
        args = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if name in GETTEXT_NAMES and args:
            found.add((args[0], args[1] if name.startswith("ngettext") and len(args) > 1 else None))
    return found


def _compiled_catalogue() -> dict:
    with (CATALOGUE / "django.mo").open("rb") as f:
        return gettext.GNUTranslations(f)._catalog  # what Django serves: the committed, compiled file


def test_every_reader_facing_string_has_a_spanish_translation():
    catalogue = _compiled_catalogue()
    msgids = set()
    for path in READER_TEMPLATES:
        msgids |= {(m, p, str(path.relative_to(ROOT))) for m, p in _template_msgids(path)}
    for module in READER_MODULES:
        msgids |= {(m, p, module) for m, p in _python_msgids(ROOT / module)}
    assert len(msgids) > 90  # the walk found the strings (a broken walk would pass vacuously)
    missing = []
    for msgid, plural, where in sorted(msgids):
        translated = [catalogue.get((msgid, i)) for i in range(3)] if plural else [catalogue.get(msgid)]
        if not all(translated):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "untranslated in locale/es (run makemessages -l es, translate, compilemessages):\n" + "\n".join(
        missing
    )


def _unescape(po_string: str) -> str:
    """A .po string's C escapes (\\n, \\", \\\\) undone; the text itself is UTF-8."""
    return po_string.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def _po_entries(path: Path) -> dict:
    """msgid (or (msgid, n)) → msgstr of the translated entries of a .po file; a small reader for this check."""
    entries, current, field = {}, {}, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if match := re.match(r'^(msgid|msgid_plural|msgctxt|msgstr(?:\[\d\])?) "(.*)"$', line):
            field = match.group(1)
            current[field] = match.group(2)
        elif line.startswith('"') and field:
            current[field] += line[1:-1]
        elif not line.strip() and current:
            msgid = _unescape(current.get("msgid", ""))
            if msgid and "msgctxt" not in current:
                for key, value in current.items():
                    if key == "msgstr" and value:
                        entries[msgid] = _unescape(value)
                    elif key.startswith("msgstr[") and value:
                        entries[(msgid, int(key[7:-1]))] = _unescape(value)
            current, field = {}, None
    return entries


def test_committed_mo_matches_the_po():
    """The .mo is committed so a machine without GNU gettext serves Spanish; it must be compiled from the .po."""
    po = _po_entries(CATALOGUE / "django.po")
    catalogue = _compiled_catalogue()
    assert po, "the .po has translations"
    stale = {k: v for k, v in po.items() if catalogue.get(k) != v}
    assert not stale, f"django.mo is stale: run manage.py compilemessages -l es ({len(stale)} entries differ)"
