"""What a message that came back says: a bounce (hard or soft), a spam complaint, an auto-reply, or none of these.

Read in this order, most authoritative first:
1. RFC 5965 feedback reports (ARF: Yahoo's CFL, Microsoft's JMRP, most feedback loops): a complaint. Microsoft's
   older JMRP format (the complained-about message attached, the recipient in X-HmXmrOriginalRecipient) too.
2. RFC 3464 delivery status notifications: `Action: failed` with a 5.x.x status is a hard bounce, with 4.x.x a
   soft one (the sender's MTA gave up on a transient failure); `delayed`, `delivered`, `relayed` and `expanded`
   need nothing (a delay ends in a delivery or in a later failure DSN).
3. RFC 3834 auto-replies (Auto-Submitted, the vendors' X- headers, out-of-office subjects): ignored. Checked after
   the reports because MTAs mark their DSNs `Auto-Submitted: auto-replied` as well.
4. Non-standard bounces (qmail, old Exim, Exchange, Yahoo's and others' own texts): flufl.bounce's detectors.

Parsing only: nothing here touches the database. Every function takes a parsed message and never raises on
strange input (defects and odd encodings are the normal case in bounces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses
from enum import StrEnum

from flufl.bounce import all_failures


class Kind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELAYED = "delayed"  # a DSN saying the MTA is still trying
    AUTO_REPLY = "auto_reply"
    OTHER = "other"  # none of the above: quarantined for the operator


@dataclass(frozen=True)
class Failure:
    recipient: str
    status: str  # the RFC 3463 code ("5.1.1"), or "" when the bounce gave none
    diagnostic: str


@dataclass
class Report:
    kind: Kind
    parser: str  # which reading decided: "arf", "jmrp", "dsn", "auto-reply", "flufl", ""
    failures: list[Failure] = field(default_factory=list)
    # Addresses in the report that may carry our signed VERP token: the DSN's own To and Delivered-To, the
    # feedback report's Original-Mail-From, the enclosed original message's Return-Path.
    token_addresses: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # Message-IDs of the original message, when enclosed
    detail: str = ""

    @property
    def is_bounce(self) -> bool:
        return self.kind in (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE)


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?<![\d.])([45])\d\d(?:[ :-]|$)")
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailer")
# Out-of-office subjects in the languages our readers write in, plus the vendors' English defaults.
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|"
    r"respuesta autom[aá]tica|fuera de la oficina|r[ée]ponse automatique|absence|vacation|auto:)",
    re.IGNORECASE,
)
_HEADERS = HeaderParser()


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_clean(value: str) -> str:
    """Text from a message, fit to store: no NUL or other control characters (PostgreSQL refuses NUL)."""
    return _CONTROLS.sub(" ", value)


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header so broken the parser can't read it  # noqa: BLE001
        return ""
    return text_clean(str(value or "")).strip()


def _fields(part: Message) -> list[Message]:
    """The header blocks of a report part (message/delivery-status is a list of blocks; message/feedback-report
    and text/rfc822-headers are text the parser left as one payload)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True) or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return [_HEADERS.parsestr(block + "\n") for block in re.split(r"\r?\n\s*\r?\n", text.strip()) if block.strip()]


def _typed_address(value: str) -> str:
    """'rfc822; user@example.org' → 'user@example.org' (RFC 3464 address-type prefix)."""
    value = value.split(";", 1)[-1] if ";" in value else value
    return value.strip().strip("<>").strip()


def _enclosed(msg: Message) -> Message | None:
    """The original message (or its headers) enclosed in a report or a non-standard bounce."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if ctype == "text/rfc822-headers":
            blocks = _fields(part)
            if blocks:
                return blocks[0]
    return None


def _collect_enclosed(report: Report, original: Message | None) -> None:
    if original is None:
        return
    for name in ("Return-Path", "X-Original-Return-Path"):
        value = _header(original, name).strip("<>")
        if value:
            report.token_addresses.append(value)
    message_id = _header(original, "Message-ID")
    if message_id:
        report.message_ids.append(message_id)


def _own_addresses(msg: Message) -> list[str]:
    """Where the report itself was delivered: a DSN goes to the envelope sender, our VERP address."""
    found = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"):
        try:
            values = msg.get_all(name) or []
        except Exception:  # noqa: BLE001
            values = []
        for _display, address in getaddresses([str(v) for v in values]):
            if address:
                found.append(address)
    return found


def _arf(msg: Message) -> Report | None:
    if msg.get_content_type() != "multipart/report" or msg.get_param("report-type", "").lower() != "feedback-report":
        return None
    report = Report(Kind.COMPLAINT, "arf")
    recipient, feedback_type = "", ""
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _fields(part):
                feedback_type = feedback_type or _header(block, "Feedback-Type").lower()
                recipient = recipient or _typed_address(_header(block, "Original-Rcpt-To"))
                sender = _header(block, "Original-Mail-From").strip("<>")
                if sender:
                    report.token_addresses.append(sender)
    original = _enclosed(msg)
    _collect_enclosed(report, original)
    if not recipient and original is not None:
        recipient = next((a for _d, a in getaddresses([_header(original, "To")]) if a), "")
    if feedback_type == "not-spam":  # the reader took it *out* of the spam folder: no complaint
        report.kind, report.detail = Kind.OTHER, "feedback report of type not-spam"
        return report
    report.failures.append(Failure(recipient, "", f"feedback report: {feedback_type or 'abuse'}"))
    return report


def _jmrp(msg: Message) -> Report | None:
    """Microsoft's JMRP as it was long sent: a plain message with the complained-about one attached, the
    recipient in X-HmXmrOriginalRecipient."""
    original = _enclosed(msg)
    if original is None:
        return None
    recipient = _header(original, "X-HmXmrOriginalRecipient") or _header(msg, "X-HmXmrOriginalRecipient")
    if not recipient:
        return None
    report = Report(Kind.COMPLAINT, "jmrp")
    _collect_enclosed(report, original)
    report.failures.append(Failure(recipient.strip("<>"), "", "feedback report: Microsoft JMRP"))
    return report


def _dsn(msg: Message) -> Report | None:
    if msg.get_content_type() != "multipart/report" or msg.get_param("report-type", "").lower() != "delivery-status":
        return None
    failed, delayed = [], []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _fields(part)[1:] or _fields(part):  # the first block is per-message
            action = _header(block, "Action").lower()
            recipient = _typed_address(_header(block, "Final-Recipient") or _header(block, "Original-Recipient"))
            status = _STATUS.search(_header(block, "Status"))
            diagnostic = " ".join(_header(block, "Diagnostic-Code").split())
            diagnostic = diagnostic.split(";", 1)[1].strip() if diagnostic.lower().startswith("smtp;") else diagnostic
            if not diagnostic:  # Exim's DSNs give the reason only in the human-readable part
                diagnostic = _diagnostic_for(_body_text(msg), recipient)[1] if recipient else ""
            failure = Failure(recipient, status.group(0) if status else "", diagnostic[:300])
            if action == "failed":
                failed.append(failure)
            elif action == "delayed":
                delayed.append(failure)
    report = Report(Kind.OTHER, "dsn")
    _collect_enclosed(report, _enclosed(msg))
    if failed:
        # A 4.x.x status in a failure: the MTA gave up on a transient condition (a full mailbox, a greylist).
        hard = any(not f.status.startswith("4") for f in failed)
        report.kind = Kind.HARD_BOUNCE if hard else Kind.SOFT_BOUNCE
        report.failures = failed
    elif delayed:
        report.kind, report.failures = Kind.DELAYED, delayed
    else:
        report.detail = "delivery status notification without a failed recipient"
    return report


def _auto_reply(msg: Message) -> Report | None:
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return Report(Kind.AUTO_REPLY, "auto-reply", detail=f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponse"):
        if _header(msg, name):
            return Report(Kind.AUTO_REPLY, "auto-reply", detail=name)
    if _header(msg, "Precedence").lower() in ("auto_reply", "auto-reply"):
        return Report(Kind.AUTO_REPLY, "auto-reply", detail="Precedence: auto_reply")
    if _AUTO_SUBJECT.match(_header(msg, "Subject")):
        return Report(Kind.AUTO_REPLY, "auto-reply", detail="out-of-office subject")
    return None


def _body_text(msg: Message, limit: int = 20000) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html"):
            raw = part.get_payload(decode=True) or b""
            try:
                chunks.append(text_clean(raw.decode(part.get_content_charset() or "utf-8", "replace")))
            except LookupError:  # a charset Python doesn't know
                chunks.append(text_clean(raw.decode("utf-8", "replace")))
        if sum(map(len, chunks)) > limit:
            break
    return "\n".join(chunks)[:limit]


def _diagnostic_for(text: str, recipient: str) -> tuple[str, str]:
    """The status code and the line of a free-form bounce that explain the failure of `recipient`."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    near = [i for i, line in enumerate(lines) if recipient and recipient.lower() in line.lower()] or [0]
    for i in near:
        for line in lines[i : i + 6]:
            status = _STATUS.search(line)
            if status or _SMTP_CODE.search(line):
                return (status.group(0) if status else ""), line[:300]
    status = _STATUS.search(text)
    # No code near it: the recipient's line and the next, where MTAs put the reason ("Unrouteable address").
    return (status.group(0) if status else ""), " ".join(lines[near[0] : near[0] + 2])[:300]


def _heuristic(msg: Message) -> Report | None:
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector tripping over a strange message (no From, say)  # noqa: BLE001
        return Report(
            Kind.OTHER, "flufl", detail=f"not a recognisable bounce (a detector failed: {exc.__class__.__name__})"
        )
    if not temporary and not permanent:
        return None
    text = _body_text(msg)
    report = Report(Kind.HARD_BOUNCE if permanent else Kind.SOFT_BOUNCE, "flufl")
    for raw in sorted(permanent or temporary):
        recipient = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        status, line = _diagnostic_for(text, recipient)
        report.failures.append(Failure(recipient.strip("<>"), status, line))
    _collect_enclosed(report, _enclosed(msg))
    return report


def _from_mail_system(msg: Message) -> bool:
    """A non-standard bounce, not a person's auto-reply: MTAs mark bounces Auto-Submitted too (Exim:
    auto-replied), so the sender and Exim's X-Failed-Recipients tell them apart."""
    if _header(msg, "X-Failed-Recipients"):
        return True
    sender = next((a for _d, a in getaddresses([_header(msg, "From")]) if a), "")
    return sender.partition("@")[0].lower() in _DAEMONS


def message_parse(msg: EmailMessage | Message) -> Report:
    """Classify a message that came back. Never raises; anything unreadable is Kind.OTHER with the reason."""
    readers = [_arf, _jmrp, _dsn, _heuristic, _auto_reply] if _from_mail_system(msg) else None
    for reader in readers or [_arf, _jmrp, _dsn, _auto_reply, _heuristic]:
        try:
            report = reader(msg)
        except Exception as exc:  # noqa: BLE001
            return Report(Kind.OTHER, reader.__name__.strip("_"), detail=f"unreadable: {exc.__class__.__name__}: {exc}")
        if report is not None:
            report.token_addresses[:0] = _own_addresses(msg)
            return report
    return Report(Kind.OTHER, "", detail="not a bounce, complaint or auto-reply", token_addresses=_own_addresses(msg))
