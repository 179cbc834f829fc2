"""The catalog epoch's table (content.catalog_epoch): one row, read and bumped in raw SQL."""

from django.db import migrations

CREATE = """
CREATE TABLE content_catalog_epoch (
    id integer PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
)
"""


class Migration(migrations.Migration):

    dependencies = [
        ("content", "0008_brand_requires_form_2253"),
    ]

    operations = [
        migrations.RunSQL(
            [CREATE, "INSERT INTO content_catalog_epoch (id, value) VALUES (1, 1)"],
            reverse_sql="DROP TABLE content_catalog_epoch",
        ),
    ]
