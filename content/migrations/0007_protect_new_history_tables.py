"""On PostgreSQL, protect content's history tables created since 0003 (the m2m history of the
companions signed with versions, 0004): UPDATE, DELETE and TRUNCATE refused. Re-running over
the tables 0003 protected is harmless (cms/append_only.py: CREATE OR REPLACE TRIGGER)."""

from django.db import migrations

from cms.append_only import history_tables, protect_tables


def protect(apps, schema_editor):
    protect_tables(schema_editor, history_tables(apps, "content"))


class Migration(migrations.Migration):
    dependencies = [("content", "0006_market_rules")]

    # Reverse: nothing to undo here; reversing 0004 drops its tables with their triggers
    # and reversing 0003 drops the rest.
    operations = [migrations.RunPython(protect, migrations.RunPython.noop)]
