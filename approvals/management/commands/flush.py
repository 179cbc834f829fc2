"""`flush` that can empty the append-only tables: as a database superuser only.

Django's flush empties every table with TRUNCATE on PostgreSQL, which the append-only
triggers refuse (cms/append_only.py). This command runs Django's flush with
`session_replication_role = replica`, the mode in which ordinary triggers do not fire and
which only a superuser may set — the one role that could drop the triggers anyway. Any
other role gets the triggers' refusal. Test databases are reset this way between
transactional tests.
"""

from django.core.management.commands.flush import Command as DjangoFlushCommand
from django.db import DatabaseError, connections


class Command(DjangoFlushCommand):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(**options)
        with connection.cursor() as cursor:
            try:
                cursor.execute("SET session_replication_role = replica")
            except DatabaseError:  # not a superuser: the triggers refuse the TRUNCATE
                return super().handle(**options)
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
