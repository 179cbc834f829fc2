"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on every record table (cms/append_only.py):
each django-simple-history table of the project, signatures, audit entries and checkpoints,
and the delivery log. `manage.py flush` (how test databases reset) still works as superuser.
"""

from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from approvals.audit import record
from cms.append_only import is_history_model, row_trigger_name, truncate_trigger_name

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORD_TABLES = [
    "approvals_signature", "approvals_auditentry", "approvals_auditcheckpoint",
    "delivery_delivery", "delivery_deliveredversion",
]
# Triggers on these two come from approvals 0002 (row) and 0004 (TRUNCATE).
ROW_TRIGGERS_FROM_0002 = {"approvals_signature": "approvals_signature_append_only",
                          "approvals_auditentry": "approvals_auditentry_append_only"}


def _project_history_tables() -> list[str]:
    tables = []
    for config in apps.get_app_configs():
        if not Path(config.path).resolve().is_relative_to(REPO_ROOT) or ".venv" in config.path:
            continue
        for model in config.get_models():
            if is_history_model(model):
                tables.append(model._meta.db_table)
    return sorted(tables)


PROTECTED_TABLES = _project_history_tables() + RECORD_TABLES

DUMMY_BY_TYPE = {
    "bigint": "1", "integer": "1", "smallint": "1", "numeric": "1", "double precision": "1",
    "real": "1", "boolean": "false", "timestamp with time zone": "now()", "date": "current_date",
    "time without time zone": "current_time", "jsonb": "'{}'", "uuid": "gen_random_uuid()",
    "interval": "'0'", "inet": "'127.0.0.1'", "bytea": "''",
}


def _insert_dummy_row(cursor, table: str) -> None:
    """One row with a plain value in every required column, inserted with triggers (and
    foreign-key checks) off, as only a superuser can."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL "
        "AND is_identity = 'NO'", [table])
    columns = cursor.fetchall()
    names = ", ".join(f'"{name}"' for name, _ in columns)
    values = ", ".join(DUMMY_BY_TYPE.get(data_type, "'x'") for _, data_type in columns)
    cursor.execute("SET session_replication_role = replica")
    try:
        cursor.execute(f'INSERT INTO "{table}" ({names}) VALUES ({values})')
    finally:
        cursor.execute("SET session_replication_role = DEFAULT")


def test_the_project_has_history_tables_to_protect():
    # Guards the discovery above: an empty list would make every test below vacuous.
    assert {"content_historicalbrand", "approvals_historicalsignature",
            "journeys_historicalenrollment", "content_historicalmoduleversion_jurisdictions",
            } <= set(PROTECTED_TABLES)


@pytest.mark.django_db
def test_every_protected_table_has_its_triggers_enabled():
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, t.tgname FROM pg_trigger t "
                       "JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE NOT t.tgisinternal AND t.tgenabled = 'O'")
        enabled = set(cursor.fetchall())
    missing = []
    for table in PROTECTED_TABLES:
        row_trigger = ROW_TRIGGERS_FROM_0002.get(table, row_trigger_name(table))
        for trigger in (row_trigger, truncate_trigger_name(table)):
            if (table, trigger) not in enabled:
                missing.append(f"{table}: {trigger}")
    assert not missing, "tables without their append-only triggers (add a migration calling "
    "cms.append_only.protect_tables): " + ", ".join(missing)


@pytest.mark.django_db
@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_update_delete_and_truncate_are_refused(table):
    with connection.cursor() as cursor:
        _insert_dummy_row(cursor, table)
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        rows = cursor.fetchone()[0]
        assert rows >= 1
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            [table])
        [primary_key] = cursor.fetchone()
        statements = [
            f'UPDATE "{table}" SET "{primary_key}" = "{primary_key}"',
            f'DELETE FROM "{table}"',
            # CASCADE: the form a table referenced by others would otherwise allow.
            f'TRUNCATE "{table}" CASCADE',
        ]
        for sql in statements:
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(sql)
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        assert cursor.fetchone()[0] == rows


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_database_as_superuser():
    # Transactional tests reset the database with flush (TRUNCATE) after each test: it must
    # get past the TRUNCATE triggers, and the triggers must be on again afterwards.
    from tests.factories import BrandFactory

    BrandFactory()
    record("submitted")
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM content_historicalbrand), "
                       "(SELECT count(*) FROM approvals_auditentry)")
        assert cursor.fetchone() == (0, 0)
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
        with pytest.raises(DatabaseError, match="append-only"):
            cursor.execute("TRUNCATE approvals_auditentry")
