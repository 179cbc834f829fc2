"""On PostgreSQL, refuse UPDATE and DELETE on signatures and audit entries at the database.

Even a shell user of the application (or raw SQL through its connection) cannot rewrite
them. TRUNCATE is not covered (it needs table ownership and is how test databases reset).
Other databases rely on the model and queryset guards; this migration does nothing there.
"""

from django.db import migrations

TABLES = ("approvals_signature", "approvals_auditentry")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION tessera_refuse_append_only_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tessera: % on % is refused: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION tessera_refuse_append_only_change()"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS tessera_refuse_append_only_change()")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
