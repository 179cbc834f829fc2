"""On PostgreSQL, also refuse TRUNCATE of signatures and audit entries (0002 refuses UPDATE and
DELETE), and UPDATE, DELETE and TRUNCATE of audit checkpoints and approvals' history tables
(cms/append_only.py)."""

from django.db import migrations

from cms.append_only import history_tables, protect_tables, unprotect_tables

ROW_PROTECTED_BY_0002 = ["approvals_signature", "approvals_auditentry"]


def _fully_protected(apps):
    return ["approvals_auditcheckpoint"] + history_tables(apps, "approvals")


def protect(apps, schema_editor):
    protect_tables(schema_editor, ROW_PROTECTED_BY_0002, rows=False)
    protect_tables(schema_editor, _fully_protected(apps))


def unprotect(apps, schema_editor):
    unprotect_tables(schema_editor, _fully_protected(apps))
    unprotect_tables(schema_editor, ROW_PROTECTED_BY_0002, rows=False)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0003_audit_checkpoint")]

    operations = [migrations.RunPython(protect, unprotect)]
