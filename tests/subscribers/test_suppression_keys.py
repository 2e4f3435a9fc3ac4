"""The suppression list survives key rotation: its own key, every key tried on lookup, and a re-hash command."""

import io

import pytest
from django.core.management import call_command

from subscribers.models import Suppression, email_hash, suppression_key_id
from subscribers.services.importing import subscribers_import
from subscribers.services.privacy import subscriber_erase
from subscribers.services.signup import SignupOutcome, subscriber_signup
from subscribers.services.suppression import address_suppress, is_suppressed
from tests.factories import subscribed

pytestmark = pytest.mark.django_db

OLD_KEY = "suppression-key-one-0123456789abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "suppression-key-two-0123456789abcdefghijklmnopqrstuvwxyz"


def keys(settings, current: str, fallbacks: list[str] | None = None) -> None:
    settings.MASTHEAD = {
        **settings.MASTHEAD,
        "SUPPRESSION_HASH_KEY": current,
        "SUPPRESSION_HASH_KEY_FALLBACKS": fallbacks or [],
    }


def rejected(newsletter) -> dict[str, str]:
    csv = "email\ncomplained@example.com\nerased@example.com\nfresh@example.com\n"
    report = subscribers_import(io.StringIO(csv), newsletter, consent_text="attested")
    return {row.value: row.reason for row in report.rejected}


def test_rotating_secret_key_as_the_readme_says_keeps_erased_and_complained_addresses_out(newsletter, settings):
    """SUPPRESSION_HASH_KEY unset: the list is keyed with SECRET_KEY, and its fallbacks are tried after a rotation."""
    keys(settings, "")
    address_suppress("complained@example.com", Suppression.Reason.COMPLAINT)
    subscriber_erase(subscribed(newsletter, email="erased@example.com"))
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation-0123456789abcdefghijkl"
    assert rejected(newsletter).keys() == {"complained@example.com", "erased@example.com"}
    assert subscriber_signup("complained@example.com", "", newsletter, "t", "v1", "form") == SignupOutcome.REFUSED


def test_own_key_rotation_every_key_checked_then_rehashed(newsletter, settings):
    keys(settings, OLD_KEY)
    subscribed(newsletter, email="complained@example.com")  # a suppressed reader keeps their row, so it re-hashes
    address_suppress("complained@example.com", Suppression.Reason.COMPLAINT)
    subscriber_erase(subscribed(newsletter, email="erased@example.com"))
    assert set(Suppression.objects.values_list("key_id", flat=True)) == {suppression_key_id(OLD_KEY)}
    # Rotating SECRET_KEY alone (and dropping it) never touches a list with its own key.
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation-0123456789abcdefghijkl"
    assert rejected(newsletter).keys() == {"complained@example.com", "erased@example.com"}

    keys(settings, NEW_KEY, [OLD_KEY])
    assert rejected(newsletter).keys() == {"complained@example.com", "erased@example.com"}
    assert is_suppressed("Complained@Example.com")
    address_suppress("complained@example.com", Suppression.Reason.HARD_BOUNCE)  # found: no second entry
    assert Suppression.objects.count() == 2

    out = io.StringIO()
    call_command("suppression_rehash", stdout=out)
    assert "1 entries re-hashed" in out.getvalue()
    assert f"1 entries stay under key {suppression_key_id(OLD_KEY)}" in out.getvalue()
    complained = Suppression.objects.get(reason=Suppression.Reason.COMPLAINT)
    assert complained.email_hash == email_hash("complained@example.com", NEW_KEY)
    assert complained.key_id == suppression_key_id(NEW_KEY)
    out = io.StringIO()
    call_command("suppression_rehash", stdout=out)  # twice: nothing more to do
    assert "0 entries re-hashed under the current key" in out.getvalue() and "1 already were" in out.getvalue()

    # The old key retired: the re-hashed entry still holds; the erased address needed it, as the command said.
    keys(settings, NEW_KEY)
    assert rejected(newsletter).keys() == {"complained@example.com"}
