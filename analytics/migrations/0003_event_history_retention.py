"""Let the raw-event retention purge reach the history copy of engagement events.

`journeys_historicalengagementevent` is append-only on PostgreSQL (journeys 0002,
cms/append_only.py): a row trigger refuses every UPDATE and DELETE. It holds a copy of
every raw event, so a retention setting that left it alone would keep the raw events
forever. This replaces that table's row trigger (same name) with one that still refuses
every UPDATE, and every DELETE except the purge's: a DELETE passes only when the
transaction has set `tessera.event_history_purge_before` (`analytics.rollups
.purge_raw_events` sets it, `SET LOCAL`, to the retention cutoff) and the event occurred
before that cutoff AND more than 30 days ago — recent history cannot be erased, even by
someone who knows the switch. TRUNCATE stays refused. Each purge is written to the
hash-chained audit trail. Other databases have no triggers; nothing to do there.
"""

from django.db import migrations

TABLE = "journeys_historicalengagementevent"
TRIGGER = f"{TABLE}_no_rewrite"  # cms.append_only.row_trigger_name(TABLE)
FUNCTION = "tessera_event_history_retention"

FORWARD = [
    f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$
DECLARE
    before timestamptz := NULLIF(current_setting('tessera.event_history_purge_before', true),
                                 '')::timestamptz;
BEGIN
    IF TG_OP = 'DELETE' AND before IS NOT NULL AND OLD.occurred_at < before
            AND OLD.occurred_at < now() - interval '30 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'tessera: % on % is refused: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
""",
    f'CREATE OR REPLACE TRIGGER "{TRIGGER}" BEFORE UPDATE OR DELETE ON "{TABLE}" '
    f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
]
BACKWARD = [
    f'CREATE OR REPLACE TRIGGER "{TRIGGER}" BEFORE UPDATE OR DELETE ON "{TABLE}" '
    "FOR EACH ROW EXECUTE FUNCTION tessera_refuse_record_change()",
    f"DROP FUNCTION IF EXISTS {FUNCTION}()",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_event_indexes"),
        ("journeys", "0002_protect_history_tables"),
    ]
    operations = [migrations.RunPython(forward, backward)]
