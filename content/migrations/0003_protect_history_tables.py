"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE on content's history tables (cms/append_only.py)."""

from django.db import migrations

from cms.append_only import history_tables, protect_tables, unprotect_tables


def protect(apps, schema_editor):
    protect_tables(schema_editor, history_tables(apps, "content"))


def unprotect(apps, schema_editor):
    unprotect_tables(schema_editor, history_tables(apps, "content"))


class Migration(migrations.Migration):
    dependencies = [("content", "0002_seed_taxonomy")]

    operations = [migrations.RunPython(protect, unprotect)]
