"""The issue email as bytes: a MIME skeleton built once per issue, personalised per recipient by byte substitution.

Per recipient nothing is parsed, encoded or templated: the skeleton is a list of fixed byte chunks and named slots,
and a message is `b"".join` of the chunks with that recipient's values (each escaped for its context once). Bodies
are 8-bit UTF-8, so no quoted-printable soft break or base64 group can ever split a marker.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate
from functools import lru_cache

import dkim
from django.conf import settings

from newsletter import placeholders
from newsletter.conf import app_settings
from newsletter.models import Issue
from newsletter.services.rendering import RenderedIssue
from subscribers import links

CRLF = b"\r\n"
# SMTP allows 998 octets per line; keep room for the values substituted into a line.
MAX_LINE = 800
# Slot markers inside the skeleton: context (H html, T text, X header) and name. Never produced by any escaping.
_SLOT = re.compile(rb"\x00MH([HTX]):([a-z_]+)\x00")
_PLACEHOLDER_NAMES = {
    placeholders.UNSUBSCRIBE_URL: b"unsubscribe_url",
    placeholders.PREFERENCES_URL: b"preferences_url",
    placeholders.NAME: b"name",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The dummy subscriber token of test sends: links render, but unsubscribe nobody.
TEST_TOKEN = "00000000-0000-0000-0000-000000000000"


class AddressError(ValueError):
    """An address that cannot be put on the wire (a control character, or a non-ASCII local part)."""


def header_safe(value: str) -> str:
    """A value for a header or a one-line context: CR, LF and other controls become spaces (no header injection)."""
    return _CONTROL.sub(" ", value).strip()


def wire_address(email: str) -> str:
    """The envelope form of an address: IDNA domain, ASCII local part, no controls."""
    email = email.strip()
    if _CONTROL.search(email) or "@" not in email:
        raise AddressError(f"invalid address {email!r}")
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise AddressError(f"{email!r} has a non-ASCII local part (needs SMTPUTF8, not supported)")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AddressError(f"{email!r} has an invalid domain") from exc
    return f"{local}@{domain}"


def _header(name: str, value: str) -> bytes:
    """One header line, RFC 2047-encoded and folded when the value is not plain ASCII."""
    value = header_safe(value)
    if value.isascii() and len(name) + len(value) < 900:
        return f"{name}: {value}".encode() + CRLF
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode() + CRLF


def _address_header(name: str, display: str, email: str) -> bytes:
    return _header(name, formataddr((header_safe(display), email), charset="utf-8"))


def _normalise_body(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _wrap_long_lines(text: str, html: bool) -> str:
    """Break lines longer than MAX_LINE at a space (or, in HTML, between tags) so 8-bit stays within SMTP's limit.
    Markers contain neither, so a break never splits one."""
    out = []
    for line in text.split("\n"):
        while len(line.encode()) > MAX_LINE:
            cut = line.rfind(" ", 0, MAX_LINE)
            if cut <= 0 and html:
                cut = line.rfind("><", 0, MAX_LINE) + 1
            if cut <= 0:
                break  # an unbreakable run (a huge URL): leave it, SMTP servers accept long lines in practice
            out.append(line[:cut])
            line = line[cut + (1 if line[cut] == " " else 0) :]
        out.append(line)
    return "\n".join(out)


def _mark(text: str, context: bytes) -> bytes:
    body = text.encode("utf-8")
    for marker, name in _PLACEHOLDER_NAMES.items():
        body = body.replace(marker.encode(), b"\x00MH" + context + b":" + name + b"\x00")
    return body.replace(b"\n", CRLF)


@dataclass
class Skeleton:
    """The issue's message with slots. Built once per issue per worker process; immutable afterwards."""

    issue_id: int
    newsletter_slug: str
    mail_from: str  # envelope sender
    subject: str
    from_header: str
    reply_to: str
    list_id: str
    chunks: list[bytes] = field(default_factory=list)  # fixed bytes, slot bytes interleaved: even = fixed
    slots: list[tuple[bytes, bytes]] = field(default_factory=list)  # (context, name) per odd position
    public_hex: str = ""
    mailto: str = ""
    text: str = ""  # the render with markers, for backends that take parts rather than bytes
    html: str = ""

    def message_id(self, delivery_id: int) -> str:
        """Unique per delivery and stable across a retry, so a receiver can fold the rare duplicate."""
        return f"<{self.public_hex}.{delivery_id}@{settings.MAIL_DOMAIN}>"


def skeleton_build(issue: Issue, rendered: RenderedIssue, subject_prefix: str = "") -> Skeleton:
    """Build the MIME skeleton of `rendered` (normally the issue's frozen render)."""
    newsletter = issue.newsletter
    boundary = f"=_mh_{secrets.token_hex(12)}"
    text = _wrap_long_lines(_normalise_body(rendered.text), html=False)
    html = _wrap_long_lines(_normalise_body(rendered.html), html=True)
    if boundary in text or boundary in html:  # 96 random bits; checked anyway because a clash corrupts the mail
        raise RuntimeError("MIME boundary collision")
    mail_from = wire_address(newsletter.from_email)
    subject = subject_prefix + rendered.subject
    list_id = f"{header_safe(newsletter.name)} <{newsletter.slug}.{settings.MAIL_DOMAIN}>"
    mailto = app_settings.UNSUBSCRIBE_MAILTO
    head = b"".join(
        [
            _address_header("From", newsletter.from_name, mail_from),
            _address_header("Reply-To", newsletter.from_name, wire_address(newsletter.reply_to))
            if newsletter.reply_to
            else b"",
            b"To: \x00MHX:to\x00\r\n",
            _header("Subject", subject),
            b"Date: \x00MHX:date\x00\r\n",
            b"Message-ID: \x00MHX:message_id\x00\r\n",
            _header("List-Id", list_id),
            # RFC 8058: the https URI is one-click (POST); the mailto serves clients that only know RFC 2369.
            b"List-Unsubscribe: <\x00MHX:one_click_url\x00>,\r\n <mailto:"
            + mailto.encode()
            + b"?subject=unsubscribe%20\x00MHX:mailto_token\x00>\r\n",
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
            CRLF,
        ]
    )
    part = f"--{boundary}\r\nContent-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    source = b"".join(
        [
            head,
            (part % "plain").encode(),
            _mark(text, b"T"),
            CRLF,
            (part % "html").encode(),
            _mark(html, b"H"),
            CRLF,
            f"--{boundary}--\r\n".encode(),
        ]
    )
    chunks: list[bytes] = []
    slots: list[tuple[bytes, bytes]] = []
    position = 0
    for match in _SLOT.finditer(source):
        chunks.append(source[position : match.start()])
        slots.append((match.group(1), match.group(2)))
        chunks.append(b"")  # placeholder for the slot value
        position = match.end()
    chunks.append(source[position:])
    return Skeleton(
        issue_id=issue.pk,
        newsletter_slug=newsletter.slug,
        mail_from=mail_from,
        subject=subject,
        from_header=formataddr((header_safe(newsletter.from_name), mail_from)),
        reply_to=newsletter.reply_to,
        list_id=list_id,
        chunks=chunks,
        slots=slots,
        public_hex=issue.public_id.hex,
        mailto=mailto,
        text=rendered.text,
        html=rendered.html,
    )


_date_cache = threading.local()


def _date_header() -> str:
    """RFC 5322 date, formatted at most once a second per thread."""
    now = int(time.time())
    if getattr(_date_cache, "second", None) != now:
        _date_cache.second, _date_cache.value = now, formatdate(now, usegmt=True)
    return _date_cache.value


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    email: str  # already in wire form (wire_address)
    name: str
    token: str  # the subscriber's random token (not a database id)


@dataclass(frozen=True)
class Personalised:
    """What the transports need for one recipient: the whole message as bytes, and the parts for non-SMTP backends."""

    data: bytes
    message_id: str
    values: placeholders.PersonalValues
    links: links.MessageLinks


def personalise(skeleton: Skeleton, recipient: Recipient) -> Personalised:
    """The recipient's message. Microseconds: two token signatures and a join."""
    personal = links.message_links(recipient.token, skeleton.newsletter_slug)
    values = placeholders.PersonalValues(
        unsubscribe_url=personal.unsubscribe_url,
        preferences_url=personal.preferences_url,
        name=header_safe(recipient.name),
    )
    message_id = skeleton.message_id(recipient.delivery_id)
    html, text = values.for_html(), values.for_text()
    by_slot = {
        (b"H", b"unsubscribe_url"): html[placeholders.UNSUBSCRIBE_URL],
        (b"H", b"preferences_url"): html[placeholders.PREFERENCES_URL],
        (b"H", b"name"): html[placeholders.NAME],
        (b"T", b"unsubscribe_url"): text[placeholders.UNSUBSCRIBE_URL],
        (b"T", b"preferences_url"): text[placeholders.PREFERENCES_URL],
        (b"T", b"name"): text[placeholders.NAME],
        (b"X", b"to"): _to_header(recipient),
        (b"X", b"date"): _date_header(),
        (b"X", b"message_id"): message_id,
        (b"X", b"one_click_url"): personal.one_click_url,
        (b"X", b"mailto_token"): personal.mailto_token,
    }
    chunks = skeleton.chunks.copy()
    for index, slot in enumerate(skeleton.slots):
        chunks[2 * index + 1] = by_slot[slot].encode()
    return Personalised(data=b"".join(chunks), message_id=message_id, values=values, links=personal)


def _to_header(recipient: Recipient) -> str:
    name = recipient.name
    if not name:
        return recipient.email
    name = header_safe(name)
    if name.isascii():
        return formataddr((name, recipient.email))
    # Non-ASCII display names are RFC 2047-encoded; formataddr does it (and keeps the line short).
    return formataddr((name, recipient.email), charset="utf-8")


# --- DKIM ------------------------------------------------------------------------------------------------------

DKIM_HEADERS = [
    b"From",
    b"Reply-To",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
]


@lru_cache(maxsize=4)
def _dkim_key(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def dkim_enabled() -> bool:
    return bool(settings.DKIM_PRIVATE_KEY_FILE)


def dkim_sign(data: bytes, from_email: str) -> bytes:
    """Prepend a DKIM-Signature covering the list headers. Per recipient, since the body carries their links."""
    domain = settings.DKIM_DOMAIN or from_email.rpartition("@")[2]
    signature = dkim.sign(
        data,
        selector=settings.DKIM_SELECTOR.encode(),
        domain=domain.encode(),
        privkey=_dkim_key(settings.DKIM_PRIVATE_KEY_FILE),
        include_headers=DKIM_HEADERS,
        linesep=b"\r\n",
    )
    return signature + data
