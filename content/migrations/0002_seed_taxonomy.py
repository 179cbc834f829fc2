"""Seed the default taxonomy of DOMAIN.md and the role groups (content/default_taxonomy.py).

Re-runnable (get_or_create on natural keys). Reversing it deletes nothing: the rows may be
referenced by content by then.
"""

from django.db import migrations

from content.default_taxonomy import seed_default_taxonomy


def seed(apps, schema_editor):
    seed_default_taxonomy(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("content", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
