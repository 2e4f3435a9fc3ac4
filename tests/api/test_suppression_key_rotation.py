"""The API's suppression check and create find entries made under an old suppression key (after a rotation)."""

import pytest

from subscribers.models import Suppression
from subscribers.services.suppression import address_suppress

pytestmark = pytest.mark.django_db

OLD_KEY = "suppression-key-one-0123456789abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "suppression-key-two-0123456789abcdefghijklmnopqrstuvwxyz"


def test_check_and_suppress_after_a_key_rotation(admin_api, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "SUPPRESSION_HASH_KEY": OLD_KEY, "SUPPRESSION_HASH_KEY_FALLBACKS": []}
    address_suppress("gone@example.com", Suppression.Reason.COMPLAINT)
    old_hash = Suppression.objects.get().email_hash
    settings.MASTHEAD = {
        **settings.MASTHEAD,
        "SUPPRESSION_HASH_KEY": NEW_KEY,
        "SUPPRESSION_HASH_KEY_FALLBACKS": [OLD_KEY],
    }

    check = admin_api.call("GET", "/suppressions/check?email=Gone@example.com").json()
    assert check == {"suppressed": True, "reason": "complaint", "email_hash": old_hash}
    created = admin_api.call("POST", "/suppressions/", {"email": "gone@example.com"})
    assert created.status_code == 201 and created.json()["email_hash"] == old_hash  # the same entry, no 500
    assert Suppression.objects.count() == 1
