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
from html import escape

import dkim
from django.conf import settings

from engagement import tokens
from engagement.services.links import message_rewrite
from newsletter import placeholders
from newsletter.conf import app_settings
from newsletter.models import Issue
from newsletter.services.rendering import RenderedIssue
from subscribers import links

CRLF = b"\r\n"
# Slot markers inside the skeleton: context (H html, T text, X header) and name. Never produced by any escaping.
_SLOT = re.compile(rb"\x00MH([HTX]):([a-z_]+)\x00")
_PLACEHOLDER_NAMES = {
    placeholders.UNSUBSCRIBE_URL: b"unsubscribe_url",
    placeholders.PREFERENCES_URL: b"preferences_url",
    placeholders.NAME: b"name",
    placeholders.TRACK: b"track",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# SMTP allows 998 octets per line (RFC 5321 4.5.3.1.6). Lines are broken to this many octets *as sent*: each
# marker is counted at the longest value it can take, and two octets stay free for dot-stuffing.
MAX_LINE_OCTETS = 996
# A reader's name in the body is cut to this many octets once escaped (a 200-character name of quotes and
# 4-byte characters would otherwise take a line by itself).
NAME_MAX_OCTETS = 200
# In HTML text with no space to break at (CJK, emoji), the break goes inside an empty <wbr> tag: a line end in
# the middle of a tag is no text, so nothing visible changes.
_HTML_HARD_BREAK = ("<wbr", ">")

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
    if not local.isascii() and not app_settings.SMTPUTF8:
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


def _wrap_long_lines(text: str, html: bool, marker_octets: dict[str, int]) -> str:
    """Break every line whose octets as sent would exceed MAX_LINE_OCTETS: at the last space that fits (or, in HTML,
    between two tags), else at the last character that fits (in HTML inside a <wbr> tag, and never inside a tag,
    an entity or a marker). Markers are counted at `marker_octets`, the longest value each can take."""
    out: list[str] = []
    in_tag = False
    for line in text.split("\n"):
        while True:
            fit = _fitting_prefix(line, marker_octets)
            if fit == len(line):
                break
            cut, skip, tail_prefix, head_suffix = _break_at(line, fit, html, in_tag)
            if cut <= 0:
                break  # an unbreakable run inside a tag (a huge URL): nothing safe to do, leave it
            head = line[:cut] + head_suffix
            out.append(head)
            in_tag = _ends_in_tag(head, in_tag) if html else False
            line = tail_prefix + line[cut + skip :]
        out.append(line)
        in_tag = _ends_in_tag(line, in_tag) if html else False
    return "\n".join(out)


def _fitting_prefix(line: str, marker_octets: dict[str, int]) -> int:
    """The longest prefix (in characters) whose octets, markers at their longest, fit a line; never mid-marker."""
    if len(line) * 4 <= MAX_LINE_OCTETS and "%%MH_" not in line:
        return len(line)  # the common case: short enough whatever the characters are
    total, index, length = 0, 0, len(line)
    while index < length:
        if line.startswith("%%MH_", index):
            marker = next((m for m in marker_octets if line.startswith(m, index)), None)
            if marker is not None:
                if total + marker_octets[marker] > MAX_LINE_OCTETS:
                    return index
                total += marker_octets[marker]
                index += len(marker)
                continue
        octets = len(line[index].encode())
        if total + octets > MAX_LINE_OCTETS:
            return index
        total += octets
        index += 1
    return length


def _break_at(line: str, fit: int, html: bool, in_tag: bool) -> tuple[int, int, str, str]:
    """Where to break a line of which `fit` characters fit: (cut, characters dropped, prefix of the rest, suffix of
    the head). (0, …) when there is no safe place."""
    space = line.rfind(" ", 0, fit + 1)
    if space > 0:
        return space, 1, "", ""
    if html:
        between = line.rfind("><", 0, fit)
        if between >= 0:
            return between + 1, 0, "", ""
    room = fit - len(_HTML_HARD_BREAK[0]) if html else fit
    for cut in range(room, 0, -1):
        if _safe_hard_break(line, cut, html, in_tag):
            return (cut, 0, _HTML_HARD_BREAK[1], _HTML_HARD_BREAK[0]) if html else (cut, 0, "", "")
    return 0, 0, "", ""


def _safe_hard_break(line: str, cut: int, html: bool, in_tag: bool) -> bool:
    before = line[:cut]
    marker_start = before.rfind("%%MH_")
    if marker_start >= 0 and "%%" not in line[marker_start + 5 : cut]:
        return False  # inside a marker
    if html:
        if _ends_in_tag(before, in_tag):
            return False
        amp = before.rfind("&")
        if amp >= 0 and ";" not in before[amp:] and len(before) - amp < 12:
            return False  # inside an entity
    return True


def _ends_in_tag(text: str, in_tag: bool) -> bool:
    opened, closed = text.rfind("<"), text.rfind(">")
    if opened == closed == -1:
        return in_tag
    return opened > closed


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
    mail_from: str  # the From address (the envelope sender when VERP is off: see envelope_sender)
    subject: str
    from_header: str
    reply_to: str
    list_id: str
    chunks: list[bytes] = field(default_factory=list)  # fixed bytes, slot bytes interleaved: even = fixed
    slots: list[tuple[bytes, bytes]] = field(default_factory=list)  # (context, name) per odd position
    public_hex: str = ""
    mail_domain: str = ""
    mailto: str = ""
    text: str = ""  # the render with markers, for backends that take parts rather than bytes
    html: str = ""
    tracked: bool = False  # its links carry the reader marker (engagement): one signature per recipient
    name_fallback: str = placeholders.NAME_FALLBACK  # the greeting's word for a nameless reader, in its language

    def envelope_sender(self, delivery_id: int) -> str:
        """VERP (app_settings.VERP, on by default): each delivery's own signed bounce address, so a bounce names
        its delivery exactly (subscribers/services/inbound). Off: the newsletter's From address."""
        return links.bounce_address(delivery_id) if app_settings.VERP else self.mail_from

    def message_id(self, delivery_id: int) -> str:
        """Unique per delivery and stable across a retry, so a receiver can fold the rare duplicate."""
        return f"<{self.public_hex}.{delivery_id}@{self.mail_domain}>"


def skeleton_build(issue: Issue, rendered: RenderedIssue, subject_prefix: str = "") -> Skeleton:
    """Build the MIME skeleton of `rendered` (normally the issue's frozen render), from the sender identity frozen
    with it (the newsletter's current one for a draft's test send)."""
    newsletter = issue.newsletter
    sender = _sender(issue)
    boundary = f"=_mh_{secrets.token_hex(12)}"
    longest = _marker_octets(newsletter.slug)
    tracked_html, tracked_text = message_rewrite(issue, rendered.html, rendered.text)
    tracked = placeholders.TRACK in tracked_html or placeholders.TRACK in tracked_text
    text = _wrap_long_lines(_normalise_body(tracked_text), html=False, marker_octets=longest)
    html = _wrap_long_lines(_normalise_body(tracked_html), html=True, marker_octets=longest)
    if boundary in text or boundary in html:  # 96 random bits; checked anyway because a clash corrupts the mail
        raise RuntimeError("MIME boundary collision")
    mail_from = wire_address(sender["from_email"])
    subject = subject_prefix + rendered.subject
    list_id = f"{header_safe(newsletter.name)} <{newsletter.slug}.{sender['mail_domain']}>"
    mailto = app_settings.UNSUBSCRIBE_MAILTO
    head = b"".join(
        [
            _address_header("From", sender["from_name"], mail_from),
            _address_header("Reply-To", sender["from_name"], wire_address(sender["reply_to"]))
            if sender["reply_to"]
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
        from_header=formataddr((header_safe(sender["from_name"]), mail_from)),
        reply_to=sender["reply_to"],
        list_id=list_id,
        chunks=chunks,
        slots=slots,
        public_hex=issue.public_id.hex,
        mail_domain=sender["mail_domain"],
        mailto=mailto,
        text=tracked_text,
        html=tracked_html,
        tracked=tracked,
        name_fallback=placeholders.name_fallback(newsletter.language),
    )


def _sender(issue: Issue) -> dict[str, str]:
    newsletter = issue.newsletter
    live = {
        "from_name": newsletter.from_name,
        "from_email": newsletter.from_email,
        "reply_to": newsletter.reply_to,
        "postal_address": newsletter.postal_address,
        "mail_domain": settings.MAIL_DOMAIN,
    }
    return {**live, **(issue.frozen_sender or {})}


def _marker_octets(newsletter_slug: str) -> dict[str, int]:
    """The longest value each body marker can take, in octets: links are as long as a sample's (tokens have a
    fixed shape; a margin covers a longer timestamp), a name is cut to NAME_MAX_OCTETS."""
    sample = links.message_links(TEST_TOKEN, newsletter_slug)
    margin = 16
    return {
        placeholders.UNSUBSCRIBE_URL: len(sample.unsubscribe_url.encode()) + margin,
        placeholders.PREFERENCES_URL: len(sample.preferences_url.encode()) + margin,
        placeholders.NAME: NAME_MAX_OCTETS,
        placeholders.TRACK: 48,  # three varints and a signature in base64url: ~20 characters
    }


def _body_name(name: str) -> str:
    """The name as the body may carry it: at most NAME_MAX_OCTETS once HTML-escaped (the worst case, 6 octets a
    character, is cheap to rule out for the usual short name)."""
    if len(name) * 6 <= NAME_MAX_OCTETS:
        return name
    while len(escape(name, quote=True).encode()) > NAME_MAX_OCTETS:
        name = name[: len(name) - max(1, len(name) // 8)]
    return name


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
    variant: int = 0  # the delivery's A/B variant (0: no test)
    per_reader: bool = False  # per-reader mode and this reader agreed: their links carry the delivery id


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
    track = (
        tokens.reader_part(
            skeleton.issue_id, recipient.variant, int(time.time()), recipient.delivery_id if recipient.per_reader else 0
        )
        if skeleton.tracked
        else ""
    )
    values = placeholders.PersonalValues(
        unsubscribe_url=personal.unsubscribe_url,
        preferences_url=personal.preferences_url,
        name=_body_name(header_safe(recipient.name)),
        fallback_name=skeleton.name_fallback,
        track=track,
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
        (b"H", b"track"): track,
        (b"T", b"track"): track,
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
    # Non-ASCII display names are RFC 2047-encoded and folded into encoded words of a short line each.
    return f"{Header(name, 'utf-8', header_name='To').encode(linesep=chr(13) + chr(10))} <{recipient.email}>"


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
