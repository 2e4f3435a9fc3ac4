"""Import stored articles from an RSS/Atom feed (feedparser) or a JSON file, deduplicated by canonical URL and
guid. Good items are imported, bad ones reported with what is wrong and where; nothing is lost silently.

Every item goes through the same validation as the admin form (a ModelForm) and the same sanitiser, so an
imported article is stored exactly as clean as a typed one.
"""

import calendar
import http.client
import ipaddress
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import feedparser
from django import forms
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from newsletter.conf import app_settings
from newsletter.models import ARTICLE_EDITABLE_FIELDS, Article
from newsletter.services.composing import article_sanitize
from newsletter.services.text import html_to_text

FORMATS = ("rss", "json")
MAX_SOURCE_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 20
USER_AGENT = "Masthead article importer (+https://github.com/)"


class ImportSourceError(Exception):
    """The source as a whole cannot be read or parsed (no items were looked at)."""


@dataclass
class ImportReport:
    imported: list[Article] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # (canonical URL, guid) of every well-formed item, in source order, imported or already present: what the
    # source holds now, for callers that follow a feed (digests).
    keys: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.imported)} imported", f"{len(self.duplicates)} already present (skipped)"]
        if self.errors:
            parts.append(f"{len(self.errors)} could not be imported")
        return ", ".join(parts) + "."


class ArticleImportForm(forms.ModelForm):
    """The fields an import may set, validated like the admin's."""

    canonical_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    image_url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Article
        fields = ARTICLE_EDITABLE_FIELDS

    def validate_unique(self):
        """Duplicates are sorted out before validation (they are skipped, not errors)."""

    def clean_key_facts(self):
        facts = self.cleaned_data.get("key_facts") or []
        if not isinstance(facts, list) or not all(isinstance(f, str | int | float) for f in facts):
            raise forms.ValidationError("must be a list of short sentences")
        return facts


# --- fetching URLs without becoming a proxy into the private network (SSRF) -----------------------------------

URL_SCHEMES = ("http", "https")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class UnsafeAddressError(OSError):
    """A connection would reach an address the importer must not fetch from. An OSError, so that urllib reports
    it from inside a connection like any other connection failure."""


def _private_urls_allowed() -> bool:
    return app_settings.IMPORT_ALLOW_PRIVATE_URLS


def address_refusal(address: str) -> tuple[str, str] | None:
    """(the address, what kind of address it is) when the importer must not connect to it; None when public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, test in (
        ("a loopback", ip.is_loopback),
        ("an unspecified", ip.is_unspecified),
        ("a link-local", ip.is_link_local),  # includes 169.254.169.254, the cloud metadata service
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
        ("a non-public", not ip.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    ):
        if test:
            return str(ip), f"{kind} address"
    return None


def _refusal_text(host: str, verb: str, refusal: tuple[str, str]) -> str:
    ip, kind = refusal
    return f"{ip} is {kind}" if host.strip("[]") == ip else f"{host} {verb} {ip}, {kind}"


def _resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a host may have several; the connection may use any of them)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def url_refusal(url: str, *, allow_private: bool = False) -> str | None:
    """Why the server must not fetch `url` (a scheme other than http(s), no host, an unknown host, or a host any of
    whose addresses is loopback, private, link-local, multicast or reserved), or None when it may. Shared by the
    article importer and outgoing webhooks: one SSRF guard for every request the server makes on a user's behalf."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        return "only http:// and https:// URLs can be fetched"
    if not parts.hostname:
        return "the URL has no host name"
    if allow_private:
        return None
    try:
        addresses = _resolve(parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80))
    except (OSError, ValueError) as exc:  # unknown host, or a port out of range
        return f"cannot resolve {parts.hostname!r} ({exc})"
    for address in addresses:
        refusal = address_refusal(address)
        if refusal:
            return _refusal_text(parts.hostname, "resolves to", refusal)
    return None


def url_check(url: str) -> None:
    """Refuse a URL the server must not fetch on an editor's behalf (see url_refusal; private addresses only with
    IMPORT_ALLOW_PRIVATE_URLS). Raises ImportSourceError saying which and why.

    This check gives the editor a clear message before anything is fetched; the connection itself checks the
    address it actually reached as well (see _GuardedConnection), so DNS answering differently the second time
    (rebinding) does not get past it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise ImportSourceError(f"Cannot import from {url}: only http:// and https:// URLs can be fetched.")
    if not parts.hostname:
        raise ImportSourceError(f"Cannot import from {url}: the URL has no host name.")
    refusal = url_refusal(url, allow_private=_private_urls_allowed())
    if refusal and refusal.startswith("cannot resolve"):
        raise ImportSourceError(f"Could not fetch {url}: {refusal}")
    if refusal:
        raise ImportSourceError(
            f"Refusing to import from {url}: {refusal}. Only "
            "feeds on the public internet can be imported by URL; download the file and upload it instead."
        )


class _GuardedConnection(http.client.HTTPConnection):
    """Checks the address the socket actually connected to, before a byte of the request (or TLS) is sent."""

    allow_private: bool | None = None  # None: the importer's setting

    def connect(self) -> None:
        super().connect()
        if _private_urls_allowed() if self.allow_private is None else self.allow_private:
            return
        refusal = address_refusal(self.sock.getpeername()[0])
        if refusal:
            self.sock.close()
            raise UnsafeAddressError(_refusal_text(self.host, "connected to", refusal))


class _GuardedHTTPSConnection(http.client.HTTPSConnection, _GuardedConnection):
    """HTTPSConnection.connect calls super().connect(), which is _GuardedConnection's: checked before TLS."""


def _guarded(connection_class, allow_private: bool | None):
    def connect(*args, **kwargs):
        connection = connection_class(*args, **kwargs)
        connection.allow_private = allow_private
        return connection

    return connect


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool | None = None):
        super().__init__()
        self.allow_private = allow_private

    def http_open(self, req):
        return self.do_open(_guarded(_GuardedConnection, self.allow_private), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool | None = None):
        super().__init__()
        self.allow_private = allow_private

    def https_open(self, req):
        return self.do_open(_guarded(_GuardedHTTPSConnection, self.allow_private), req, context=self._context)


class _CheckedRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        url_check(newurl)  # a public feed redirecting to an internal address is refused with the same message
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def guarded_opener(
    *, allow_private: bool | None = None, follow_redirects: bool = True
) -> urllib.request.OpenerDirector:
    """An opener for http(s) only (no file:, ftp: or data: handlers, so a redirect cannot reach them) and no proxy:
    the guard must see the address it connects to. A connection to a refused address raises UnsafeAddressError
    (inside urllib's URLError). `allow_private` None follows MASTHEAD["IMPORT_ALLOW_PRIVATE_URLS"]; without
    `follow_redirects` a 3xx is an HTTPError like any other non-2xx answer."""
    opener = urllib.request.OpenerDirector()
    handlers = [_GuardedHTTPHandler(allow_private), _GuardedHTTPSHandler(allow_private)]
    if follow_redirects:
        handlers.append(_CheckedRedirectHandler())
    for handler in (*handlers, urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def url_read(url: str) -> bytes:
    """The body of an http(s) URL (at most MAX_SOURCE_BYTES + 1 bytes), fetched through the SSRF guard. Raises
    ImportSourceError."""
    url_check(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with guarded_opener().open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            return response.read(MAX_SOURCE_BYTES + 1)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, UnsafeAddressError):
            raise ImportSourceError(
                f"Refusing to import from {url}: {exc.reason}. Only feeds on the public internet can be imported "
                "by URL."
            ) from exc
        raise ImportSourceError(f"Could not fetch {url}: {exc}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts, resets, malformed responses
        raise ImportSourceError(f"Could not fetch {url}: {exc}") from exc


# --- reading sources -------------------------------------------------------------------------------------------


def source_read(source: str) -> tuple[bytes, str]:
    """The bytes of a file path or an http(s) URL, and a name for messages. Raises ImportSourceError."""
    if _SCHEME_RE.match(source):  # any URL, so that ftp:// or file:// is refused by name, not "no such file"
        data = url_read(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImportSourceError(f"No such file: {source}")
        data = path.read_bytes()[: MAX_SOURCE_BYTES + 1]
    if len(data) > MAX_SOURCE_BYTES:
        raise ImportSourceError(f"{source} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    return data, source


def format_guess(name: str, data: bytes) -> str:
    """json when the name or the first character says so, else rss (RSS and Atom are both XML)."""
    if name.lower().endswith(".json") or data.lstrip()[:1] in (b"[", b"{"):
        return "json"
    return "rss"


# --- mapping items to article fields ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _feed_entry_fields(entry) -> dict[str, Any]:
    content = entry.get("content") or []
    summary = entry.get("summary", "")
    body = content[0].get("value", "") if content else summary
    dek = html_to_text(summary)[:600] if content and summary else ""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    tags = [t.get("term", "") for t in entry.get("tags", []) if t.get("term")]
    image = ""
    for media in [*entry.get("media_content", []), *entry.get("media_thumbnail", [])]:
        if media.get("url") and media.get("medium", "image") == "image":
            image = media["url"]
            break
    if not image:
        image = next(
            (link.get("href", "") for link in entry.get("links", []) if link.get("type", "").startswith("image/")),
            "",
        )
    return {
        "headline": _text(entry.get("title")),
        "dek": dek,
        "byline": _text(entry.get("author")),
        "section": tags[0] if tags else "",
        "tags": ", ".join(tags),
        "canonical_url": _text(entry.get("link")),
        "guid": _text(entry.get("id")),
        "image_url": image,
        "published_at": datetime.fromtimestamp(calendar.timegm(published), tz=UTC) if published else None,
        "body_html": body,
    }


def _json_item_fields(item: dict) -> dict[str, Any]:
    tags = item.get("tags", "")
    return {
        "headline": _text(item.get("headline") or item.get("title")),
        "dek": _text(item.get("dek") or item.get("summary")),
        "byline": _text(item.get("byline") or item.get("author")),
        "section": _text(item.get("section")),
        "tags": ", ".join(map(str, tags)) if isinstance(tags, list) else _text(tags),
        "canonical_url": _text(item.get("canonical_url") or item.get("url")),
        "guid": _text(item.get("guid") or item.get("id")),
        "image_url": _text(item.get("image_url")),
        "image_alt": _text(item.get("image_alt")),
        "published_at": item.get("published_at") or None,
        "key_facts": item.get("key_facts", []),
        "body_html": item.get("body_html") or "",
        "body_markdown": _text(item.get("body_markdown")),
        "commentary_html": item.get("commentary_html") or "",
        "bottom_line": _text(item.get("bottom_line")),
    }


def _json_feed_item_fields(item: dict) -> dict[str, Any]:
    """An item of a JSON Feed (jsonfeed.org, versions 1 and 1.1)."""
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
    tags = [str(t) for t in item.get("tags") or [] if str(t).strip()]
    body = item.get("content_html") or ""
    if not body and item.get("content_text"):
        body = "".join(f"<p>{escape(p)}</p>" for p in str(item["content_text"]).split("\n\n") if p.strip())
    return {
        "headline": _text(item.get("title")),
        "dek": _text(item.get("summary"))[:600],
        "byline": ", ".join(_text(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name")),
        "section": tags[0] if tags else "",
        "tags": ", ".join(tags),
        "canonical_url": _text(item.get("url")),
        "guid": _text(item.get("id")),
        "image_url": _text(item.get("image") or item.get("banner_image")),
        "published_at": item.get("date_published") or None,
        "body_html": body,
    }


def _is_json_feed(payload: Any) -> bool:
    return isinstance(payload, dict) and str(payload.get("version", "")).startswith("https://jsonfeed.org/")


def _parse(data: bytes, fmt: str, name: str) -> list[tuple[str, dict[str, Any] | str]]:
    """(label, fields) per item, or (label, error message) for an item that is not even the right shape."""
    if fmt == "json":
        try:
            payload = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImportSourceError(f"{name} is not valid JSON: {exc}") from exc
        if _is_json_feed(payload):
            items = payload.get("items")
            if not isinstance(items, list):
                raise ImportSourceError(f"{name}: a JSON Feed needs a list of items")
            return [
                (f"item {n}", _json_feed_item_fields(item) if isinstance(item, dict) else "is not an object")
                for n, item in enumerate(items, start=1)
            ]
        items = payload.get("articles") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise ImportSourceError(f'{name}: expected a list of articles or {{"articles": [...]}}')
        return [
            (f"item {n}", _json_item_fields(item) if isinstance(item, dict) else "is not an object")
            for n, item in enumerate(items, start=1)
        ]
    feed = feedparser.parse(data)
    if not feed.entries and (feed.bozo or not feed.get("version")):
        reason = getattr(feed, "bozo_exception", None) or "no items found"
        raise ImportSourceError(f"{name} is not an RSS or Atom feed: {reason}")
    return [(f"item {n}", _feed_entry_fields(entry)) for n, entry in enumerate(feed.entries, start=1)]


# --- the import ------------------------------------------------------------------------------------------------


def _describe(label: str, fields: dict) -> str:
    headline = fields.get("headline")
    return f"{label} (“{headline[:60]}”)" if headline else label


def _form_errors(form: forms.Form) -> str:
    return "; ".join(
        f"{name if name != '__all__' else 'item'}: {' '.join(errors)}" for name, errors in form.errors.items()
    )


def articles_import(data: bytes, fmt: str, *, name: str = "source") -> ImportReport:
    """Import every good item of `data` (format "rss" or "json"); skip items whose canonical URL or guid is
    already stored (or repeated in the source); report bad items. Safe to run twice: the second run only skips."""
    if fmt not in FORMATS:
        raise ImportSourceError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    report = ImportReport()
    parsed = _parse(data, fmt, name)
    urls = {f.get("canonical_url") for _, f in parsed if isinstance(f, dict) and f.get("canonical_url")}
    guids = {f.get("guid") for _, f in parsed if isinstance(f, dict) and f.get("guid")}
    seen_urls = set(Article.objects.filter(canonical_url__in=urls).values_list("canonical_url", flat=True))
    seen_guids = set(Article.objects.filter(guid__in=guids).values_list("guid", flat=True))

    for label, fields in parsed:
        if isinstance(fields, str):
            report.errors.append(f"{label}: {fields}")
            continue
        where = _describe(label, fields)
        url, guid = fields.get("canonical_url", ""), fields.get("guid", "")
        report.keys.append((url, guid))
        if (url and url in seen_urls) or (guid and guid in seen_guids):
            report.duplicates.append(where)
            continue
        if not fields.get("headline"):
            report.errors.append(f"{where}: has no headline/title")
            continue
        markdown = fields.pop("body_markdown", "")
        fields.setdefault("slug", slugify(fields["headline"])[:300] or "article")
        if fields.get("published_at") is None:
            fields["published_at"] = datetime.now(tz=UTC)
        form = ArticleImportForm(data=fields)
        if not form.is_valid():
            report.errors.append(f"{where}: {_form_errors(form)}")
            continue
        article = article_sanitize(form.save(commit=False), body_markdown=markdown)
        try:
            with transaction.atomic():  # one bad row must not undo the good ones
                article.save()
        except IntegrityError as exc:  # a concurrent import stored the same URL/guid first
            report.duplicates.append(f"{where} ({exc.__class__.__name__})")
            continue
        report.imported.append(article)
        seen_urls.add(url)
        seen_guids.add(guid)
    return report


def articles_import_from(source: str, fmt: str | None = None) -> ImportReport:
    """Import from a file path or an http(s) URL; the format is guessed when not given."""
    data, name = source_read(source)
    return articles_import(data, fmt or format_guess(name, data), name=name)
