"""How the delivery log is stored on PostgreSQL: its large documents compressed with lz4
(delivery migration 0007), which costs the delivery statement far less than pglz."""

import pytest
from django.db import connection

from delivery.models import AssemblyJobResult, Delivery

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="column compression is PostgreSQL's")]


def compression(model, field: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT attcompression FROM pg_attribute "
                       "WHERE attrelid = %s::regclass AND attname = %s",
                       [model._meta.db_table, model._meta.get_field(field).column])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(("model", "field"), [
    (Delivery, "manifest"), (AssemblyJobResult, "html"), (AssemblyJobResult, "text"),
    (AssemblyJobResult, "manifest"),
])
def test_large_documents_are_compressed_with_lz4(model, field):
    assert compression(model, field) == "l"
