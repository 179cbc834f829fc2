"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE on the delivery log (what was served to
whom, by manifest) and on delivery's history tables, if any (cms/append_only.py).

Batch job results and recipients are not the delivery log: `delivery.batch.purge` deletes
them by design, so AssemblyJob / AssemblyJobResult stay unprotected.
"""

from django.db import migrations

from cms.append_only import history_tables, protect_tables, unprotect_tables

DELIVERY_LOG_TABLES = ["delivery_delivery", "delivery_deliveredversion"]


def protect(apps, schema_editor):
    protect_tables(schema_editor, DELIVERY_LOG_TABLES + history_tables(apps, "delivery"))


def unprotect(apps, schema_editor):
    unprotect_tables(schema_editor, DELIVERY_LOG_TABLES + history_tables(apps, "delivery"))


class Migration(migrations.Migration):
    dependencies = [("delivery", "0003_assemblyjob_requeued_at")]

    operations = [migrations.RunPython(protect, unprotect)]
