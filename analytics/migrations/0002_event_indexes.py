"""Indexes the rollup reads by on tables of other apps (journeys, delivery), created here
with IF NOT EXISTS so those apps' models stay untouched (docs/operations.md, "Analytics").

- engagement events by occurred_at (btree): the rollup recomputes one journey-day at a time;
- PostgreSQL only: a BRIN index on the delivery log's served_at (append-only, in time order,
  tiny next to the btree) for range scans over months.
"""

from django.db import migrations

FORWARD = {
    "any": ["CREATE INDEX IF NOT EXISTS analytics_event_occurred_at "
            "ON journeys_engagementevent (occurred_at)"],
    "postgresql": ["CREATE INDEX IF NOT EXISTS analytics_delivery_served_brin "
                   "ON delivery_delivery USING brin (served_at)"],
}
BACKWARD = ["DROP INDEX IF EXISTS analytics_event_occurred_at",
            "DROP INDEX IF EXISTS analytics_delivery_served_brin"]


def forward(apps, schema_editor):
    statements = FORWARD["any"] + FORWARD.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def backward(apps, schema_editor):
    for sql in BACKWARD:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_facts"),
        ("journeys", "0001_initial"),
        ("delivery", "0001_initial"),
    ]
    operations = [migrations.RunPython(forward, backward)]
