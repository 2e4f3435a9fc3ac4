"""The Editors and Senders groups on every install, not only where seed_demo ran (newsletter/roles.py).

Permissions are normally created after all migrations (post_migrate), so on a fresh database they are created
here first, for the apps whose permissions the groups hold. Existing groups of these names get exactly these
permissions. Reversing leaves the groups: people may have been put in them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITOR_PERMISSIONS = [
    f"{action}_{model}"
    for model in ("article", "issue", "issuearticle", "newsletter")
    for action in ("add", "change", "view")
] + ["view_delivery", "view_subscriber"]
ROLES = {"Editors": EDITOR_PERMISSIONS, "Senders": [*EDITOR_PERMISSIONS, "send_issue"]}


def roles_create(apps, schema_editor):
    for label in ("newsletter", "subscribers"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True  # create_permissions skips app configs without a models module
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label__in=["newsletter", "subscribers"], codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0004_sendrun_heartbeat_at"),
        ("subscribers", "0004_subscriber_language"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
