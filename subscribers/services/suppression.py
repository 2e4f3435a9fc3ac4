"""The suppression list: addresses that must never be mailed or re-imported, kept as keyed hashes.

Every lookup hashes the canonical address under every key that may have made an entry (models.suppression_keys),
so a key rotation never lets a suppressed or erased address back in; new entries are made under the current key,
and `suppression_rehash` moves old entries onto it where the address is still on file.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction

from newsletter import delivery
from subscribers.models import (
    ConsentEvent,
    MailEvent,
    Subscriber,
    Suppression,
    email_hash,
    suppression_key_id,
    suppression_keys,
)

from .addresses import InvalidAddress, address_normalise, subscribers_by_address
from .rows import row_insert_new


def address_canonical(email: str) -> str:
    """The form every door stores and hashes an address in: address_normalise's (the domain lowercased and in
    Unicode, so a bounce reported for "ana@xn--bcher-kva.de" is the signup's "ana@bücher.de"). An address that
    does not validate is kept as given, stripped, so it can still be suppressed."""
    try:
        return address_normalise(email)
    except InvalidAddress:
        return (email or "").strip()


def address_hashes(canonical_email: str, keys: list[str] | None = None) -> list[str]:
    """The address's hash under each suppression key, the current key's first."""
    return [email_hash(canonical_email, key) for key in keys or suppression_keys()]


def suppression_find(email: str) -> Suppression | None:
    """The suppression entry of `email` made under any key, or None."""
    hashes = address_hashes(address_canonical(email))
    return Suppression.objects.filter(email_hash__in=hashes).order_by("pk").first()


def suppressions_by_address(canonical_emails: Iterable[str]) -> dict[str, str]:
    """{canonical address: reason} of the suppressed among `canonical_emails` (already normalised: imports),
    in one query whatever the number of keys."""
    keys = suppression_keys()
    owner = {digest: email for email in canonical_emails for digest in address_hashes(email, keys)}
    found = Suppression.objects.filter(email_hash__in=list(owner)).values_list("email_hash", "reason")
    return {owner[digest]: reason for digest, reason in found}


def is_suppressed(email: str) -> bool:
    return suppression_find(email) is not None


def suppression_add(canonical_email: str, reason: str) -> tuple[Suppression, bool]:
    """The address's entry, made under the current key unless one exists under any key. Returns (entry, created).

    One statement for a new entry: the insert carries the check for an entry under any key (NOT EXISTS) and
    the race with the same address suppressed at the same moment elsewhere (ON CONFLICT), without a savepoint."""
    keys = suppression_keys()
    hashes = address_hashes(canonical_email, keys)
    entry = Suppression(email_hash=hashes[0], key_id=suppression_key_id(keys[0]), reason=reason)
    if row_insert_new(entry, unless=Suppression.objects.filter(email_hash__in=hashes)):
        return entry, True
    existing = Suppression.objects.filter(email_hash__in=hashes).order_by("pk").first()
    if existing is None:  # removed between the two statements: try again, as a new entry
        return suppression_add(canonical_email, reason)
    return existing, False


_LOOK_UP = object()


def address_suppress(
    email: str,
    reason: str,
    source: str = ConsentEvent.Source.ADMIN,
    detail: str = "",
    *,
    savepoint: bool = True,
    subscriber=_LOOK_UP,
) -> None:
    """Suppress an address (bounce, complaint, operator). Safe to call twice; the ledger records the first time.

    The address is canonicalised first, so a bounce for the ASCII (IDNA) form of an internationalised domain is
    filed, and found later, under the form signup and import store. The subscriber, if any, stops receiving mail
    at once: every send claims only active subscribers, and their pending deliveries of issues in progress are
    skipped in this transaction.

    `savepoint=False` for a caller whose own transaction fails as a whole anyway (the bounce services);
    `subscriber`: the row (or None) the caller has just read for this address, saving the lookup.
    """
    with transaction.atomic(savepoint=savepoint):
        _suppress(address_canonical(email), reason, source, detail, subscriber)


def _suppress(email: str, reason: str, source: str, detail: str, subscriber) -> None:
    suppression, created = suppression_add(email, reason)
    if not created and suppression.reason == Suppression.Reason.ERASED and reason != Suppression.Reason.ERASED:
        # An erased person who came back and then bounced or complained: the stronger reason wins.
        suppression.reason = reason
        suppression.save(update_fields=["reason"])
        created = True
    if subscriber is _LOOK_UP or (subscriber is not None and subscriber.email.strip().lower() != email.lower()):
        subscriber = subscribers_by_address(Subscriber.objects.all(), email).first()
    if subscriber:
        delivery.subscriber_withdraw(subscriber.pk, reason="suppressed")
    if subscriber and subscriber.status != Subscriber.Status.SUPPRESSED:
        subscriber.status = Subscriber.Status.SUPPRESSED
        subscriber.save(update_fields=["status", "updated_at"])
    if created:
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.SUPPRESS, source=source, detail=(detail or reason)[:300]
        )


@dataclass
class RehashReport:
    rehashed: int = 0  # entries moved onto the current key
    current: int = 0  # entries already under it
    # Entries whose address is not on file (erased people: by design nothing but the hash is kept; an operator's
    # suppression of an address never imported), by the key id they were made under ("" for entries older than
    # key ids). They stay findable only while their key is in SUPPRESSION_HASH_KEY_FALLBACKS (or SECRET_KEY /
    # SECRET_KEY_FALLBACKS).
    left: dict[str, int] = field(default_factory=dict)


def _addresses_on_file() -> Iterator[str]:
    """Every address still held: subscribers (suppressed ones keep their row) and bounce reports."""
    yield from Subscriber.objects.values_list("email", flat=True).iterator(chunk_size=5000)
    reports = MailEvent.objects.exclude(recipient="").values_list("recipient", flat=True)
    yield from reports.iterator(chunk_size=5000)


def suppressions_rehash() -> RehashReport:
    """Re-key the suppression list under the current key: every entry whose address is still on file gets its
    hash under the current key. Safe to run twice (the second run finds everything current). Entries of erased
    addresses cannot be re-keyed, since their address is gone: the report counts them per key."""
    keys = suppression_keys()
    current_key, current_id = keys[0], suppression_key_id(keys[0])
    report = RehashReport()
    stale = {row.email_hash: row for row in Suppression.objects.exclude(key_id=current_id)}
    report.current = Suppression.objects.filter(key_id=current_id).count()
    if stale:
        for address in _addresses_on_file():
            canonical = address_canonical(address)
            for key in keys:
                row = stale.get(email_hash(canonical, key))
                if row is None:
                    continue
                with transaction.atomic():
                    _rekey(row, email_hash(canonical, current_key), current_id)
                del stale[row.email_hash]
                if key == current_key:
                    report.current += 1  # an old entry without a key id that was already under the current key
                else:
                    report.rehashed += 1
                break
    for row in stale.values():
        report.left[row.key_id] = report.left.get(row.key_id, 0) + 1
    return report


def _rekey(row: Suppression, digest: str, key_id: str) -> None:
    twin = Suppression.objects.select_for_update().filter(email_hash=digest).exclude(pk=row.pk).first()
    if twin is None:
        Suppression.objects.filter(pk=row.pk).update(email_hash=digest, key_id=key_id)
        return
    # Suppressed again under the current key meanwhile: keep one entry, with the stronger reason.
    if twin.reason == Suppression.Reason.ERASED and row.reason != Suppression.Reason.ERASED:
        Suppression.objects.filter(pk=twin.pk).update(reason=row.reason)
    Suppression.objects.filter(pk=row.pk).delete()
