"""PostgreSQL: compress the delivery log's manifest and the batch results' documents with
lz4 instead of the default pglz.

A four-module manifest is about 7 KB of JSON, so every delivery stores it out of line,
compressed; with pglz that was about a third of the delivery statement's server CPU
(docs/performance.md, "Server-bound hot statements"). Only new values are compressed
this way; rows already written keep pglz and read as before. A server built without lz4
(or older than PostgreSQL 14) keeps pglz and says so in a notice. Nothing on SQLite.
"""

from django.db import migrations

COLUMNS = [
    ("delivery_delivery", "manifest"),
    ("delivery_assemblyjobresult", "html"),
    ("delivery_assemblyjobresult", "text"),
    ("delivery_assemblyjobresult", "manifest"),
]


def set_compression(method: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        statements = "\n".join(
            f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};"
            for table, column in COLUMNS)
        schema_editor.execute(
            "DO $$ BEGIN\n" + statements + "\n"
            "EXCEPTION WHEN feature_not_supported OR syntax_error THEN\n"
            f"  RAISE NOTICE 'compression {method} not available here: columns keep pglz';\n"
            "END $$;")
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0006_delivery_log_fewer_index_writes'),
    ]

    operations = [
        migrations.RunPython(set_compression("lz4"), set_compression("default")),
    ]
