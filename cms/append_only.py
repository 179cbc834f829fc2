"""PostgreSQL triggers that make record tables append-only at the database.

Each app's migration protects its own tables (`protect_tables` / `unprotect_tables` from a
`RunPython`): a row-level trigger refuses UPDATE and DELETE, a statement-level trigger refuses
TRUNCATE, so neither the application, a shell on its connection nor raw SQL can rewrite or
empty them. Other databases rely on the model guards; these functions do nothing there.

Protected: every django-simple-history table (`history_tables`), the audit, signature and
audit-checkpoint tables, and the delivery log. A new history table (a new historical model or
m2m field history) needs a migration calling `protect_tables(schema_editor,
history_tables(apps, "<app>"))` — idempotent (CREATE OR REPLACE TRIGGER, PostgreSQL 14+);
tests/integration/test_append_only_postgres.py fails for any history table left out.

Only a superuser can get past them, by `SET session_replication_role = replica` (ordinary
triggers do not fire in that mode) — which a superuser, able to drop the triggers anyway,
is the only one allowed to do. That is how `manage.py flush` (and the test databases,
reset by flush = TRUNCATE) still work: approvals/management/commands/flush.py.
"""

from __future__ import annotations

REFUSE_FUNCTION = "tessera_refuse_record_change"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {REFUSE_FUNCTION}() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tessera: % on % is refused: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

# Dropped with the last trigger that uses it (several apps' migrations share the function).
DROP_FUNCTION_IF_UNUSED = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                   WHERE p.proname = '{REFUSE_FUNCTION}') THEN
        DROP FUNCTION IF EXISTS {REFUSE_FUNCTION}();
    END IF;
END;
$$;
"""

ROW_TRIGGER_SUFFIX = "_no_rewrite"
TRUNCATE_TRIGGER_SUFFIX = "_no_truncate"


def row_trigger_name(table: str) -> str:
    return f"{table}{ROW_TRIGGER_SUFFIX}"[:63]


def truncate_trigger_name(table: str) -> str:
    return f"{table}{TRUNCATE_TRIGGER_SUFFIX}"[:63]


def is_history_model(model) -> bool:
    """A django-simple-history model: a historical record, or the history of an m2m field."""
    field_names = {field.name for field in model._meta.get_fields()}
    return ({"history_id", "history_type", "history_date"} <= field_names
            or "m2m_history_id" in field_names)


def history_tables(apps, app_label: str) -> list[str]:
    """The django-simple-history tables of one app (in the migration state `apps`)."""
    return sorted(model._meta.db_table for model in apps.get_app_config(app_label).get_models()
                  if is_history_model(model))


def protect_tables(schema_editor, tables, *, rows: bool = True) -> None:
    """Refuse TRUNCATE (and, with `rows`, UPDATE/DELETE) on `tables`; PostgreSQL only.

    `rows=False` for tables whose row trigger an earlier migration already created.
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION, params=None)
    for table in tables:
        if rows:
            schema_editor.execute(
                f'CREATE OR REPLACE TRIGGER "{row_trigger_name(table)}" BEFORE UPDATE OR DELETE ON "{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION {REFUSE_FUNCTION}()"
            )
        schema_editor.execute(
            f'CREATE OR REPLACE TRIGGER "{truncate_trigger_name(table)}" BEFORE TRUNCATE ON "{table}" '
            f"FOR EACH STATEMENT EXECUTE FUNCTION {REFUSE_FUNCTION}()"
        )


def unprotect_tables(schema_editor, tables, *, rows: bool = True) -> None:
    """The reverse of `protect_tables`."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{truncate_trigger_name(table)}" ON "{table}"')
        if rows:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS "{row_trigger_name(table)}" ON "{table}"')
    schema_editor.execute(DROP_FUNCTION_IF_UNUSED, params=None)
