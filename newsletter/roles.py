"""The editorial roles every install has: Editors compose, preview and test; Senders may also schedule and send.

Created by a data migration (newsletter/migrations/0005_roles_editors_senders.py, which keeps its own copy of
these lists, as migrations must) and kept in step by `roles_ensure`, which seed_demo calls. Put a person in a
group in the admin (Users → the user → Groups); a superuser needs neither.
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
    "view_delivery",
    "view_subscriber",
]
SENDER_PERMISSIONS = [*EDITOR_PERMISSIONS, "send_issue"]


def roles_ensure() -> None:
    """Create the groups if missing and give each exactly its permissions. Safe to run twice."""
    for name, codenames in ((EDITORS_GROUP, EDITOR_PERMISSIONS), (SENDERS_GROUP, SENDER_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label__in=["newsletter", "subscribers"], codename__in=codenames)
        )
