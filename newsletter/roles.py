"""The editorial roles every install has: Editors compose, preview and test; Senders may also schedule and send.

Created by a data migration (newsletter/migrations/0005_roles_editors_senders.py, which keeps its own copy of
the lists of that time, as migrations must). After every `migrate` (post_migrate) `roles_grant_missing` gives
each group the permissions this module lists and it lacks, so a role gains the models added later (images,
segments, feed digests) on an upgrade without a data migration per model; it never takes a permission away, so
an operator's own grants survive. `roles_ensure` (seed_demo) sets them exactly. Put a person in a group in the
admin (Users → the user → Groups); a superuser needs neither.
"""

from django.contrib.auth.models import Group, Permission

EDITORS_GROUP = "Editors"
SENDERS_GROUP = "Senders"

EDITOR_PERMISSIONS = [
    *(
        f"{action}_{model}"
        for model in ("article", "issue", "issuearticle", "newsletter")
        for action in ("add", "change", "view")
    ),
    *(f"{action}_image" for action in ("add", "change", "view")),
    "view_delivery",
    "view_subscriber",
    "view_segment",
    "view_tag",
    "view_feeddigest",
    "view_feeddigestrun",
]
# Senders choose who gets an issue and what runs by itself, so they also keep the segments and feed digests.
SENDER_PERMISSIONS = [
    *EDITOR_PERMISSIONS,
    "send_issue",
    *(f"{action}_{model}" for model in ("segment", "feeddigest") for action in ("add", "change")),
]
ROLE_APPS = ["newsletter", "subscribers", "automations"]
ROLES = {EDITORS_GROUP: EDITOR_PERMISSIONS, SENDERS_GROUP: SENDER_PERMISSIONS}


def roles_ensure() -> None:
    """Create the groups if missing and give each exactly its permissions. Safe to run twice."""
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(codenames))


def roles_grant_missing(**_signal_kwargs) -> None:
    """post_migrate (sent once per app, after its permissions exist): add what each existing role lacks."""
    for name, codenames in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*_permissions(codenames))


def _permissions(codenames: list[str]):
    return Permission.objects.filter(content_type__app_label__in=ROLE_APPS, codename__in=codenames)
