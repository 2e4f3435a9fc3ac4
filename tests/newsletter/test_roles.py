"""The Editors and Senders groups exist on every install (a data migration), not only after seed_demo, and gain
the permissions of models added later on the next migrate."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from newsletter.roles import EDITOR_PERMISSIONS, SENDER_PERMISSIONS

BEFORE = ("newsletter", "0004_sendrun_heartbeat_at")


def perms(group: str) -> set[str]:
    return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_fresh_install_has_the_roles_after_migrate(django_user_model):
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([BEFORE])
        # As on a fresh database: no groups, and no permissions yet (post_migrate makes them after every migration).
        Group.objects.all().delete()
        Permission.objects.all().delete()
    finally:
        call_command("migrate", verbosity=0)  # as an operator runs it: post_migrate follows

    assert perms("Editors") == set(EDITOR_PERMISSIONS)
    assert perms("Senders") == set(SENDER_PERMISSIONS) and "send_issue" in perms("Senders")
    editor = django_user_model.objects.create_user("ed", password="x", is_staff=True)
    sender = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editors"))
    sender.groups.add(Group.objects.get(name="Senders"))
    assert editor.has_perm("newsletter.change_issue") and not editor.has_perm("newsletter.send_issue")
    assert sender.has_perm("newsletter.send_issue")


@pytest.mark.django_db
def test_seed_demo_keeps_the_roles_in_step_and_runs_twice():
    Group.objects.filter(name="Senders").delete()
    Group.objects.get_or_create(name="Editors")[0].permissions.clear()
    call_command("seed_demo", "--no-admin", verbosity=0)
    call_command("seed_demo", "--no-admin", verbosity=0)
    assert perms("Editors") == set(EDITOR_PERMISSIONS) and perms("Senders") == set(SENDER_PERMISSIONS)
    assert Group.objects.filter(name__in=["Editors", "Senders"]).count() == 2


@pytest.mark.django_db
def test_migrate_grants_a_role_what_it_lacks_and_keeps_an_operators_own_grants():
    editors = Group.objects.get(name="Editors")
    # As an install upgraded from before images existed, where the operator also let editors delete articles.
    editors.permissions.remove(*Permission.objects.filter(codename__endswith="_image"))
    editors.permissions.add(Permission.objects.get(codename="delete_article"))
    assert not editors.permissions.filter(codename="add_image").exists()

    call_command("migrate", verbosity=0)

    assert {"add_image", "change_image", "view_image", "delete_article"} <= perms("Editors")
    assert not {"delete_image", "send_issue", "add_segment"} & perms("Editors")
    assert {"add_segment", "change_feeddigest", "send_issue"} <= perms("Senders")
