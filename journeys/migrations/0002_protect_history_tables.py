"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE on journeys' history tables (cms/append_only.py)."""

from django.db import migrations

from cms.append_only import history_tables, protect_tables, unprotect_tables


def protect(apps, schema_editor):
    protect_tables(schema_editor, history_tables(apps, "journeys"))


def unprotect(apps, schema_editor):
    unprotect_tables(schema_editor, history_tables(apps, "journeys"))


class Migration(migrations.Migration):
    dependencies = [("journeys", "0001_initial")]

    operations = [migrations.RunPython(protect, unprotect)]
