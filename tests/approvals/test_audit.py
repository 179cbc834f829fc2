import pytest
from django.core.management import call_command
from django.db import connection

from approvals.audit import GENESIS_HASH, record, verify_chain
from approvals.models import AppendOnlyError, AuditEntry
from tests.factories import UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_entries_are_chained_to_the_previous_hash():
    user = UserFactory(first_name="Ann", last_name="Lee", username="alee")
    version = VersionFactory()
    first = record("submitted", actor=user, target=version, data={"round": 1})
    second = record("decided", actor=user, target=version, data={"role": "medical"})
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert (second.seq, second.actor_name, second.module_code) == (2, "Ann Lee (alee)",
                                                                   version.module.code)
    assert verify_chain() == (2, None)


def test_audit_entries_cannot_be_changed_or_deleted_through_the_orm():
    entry = record("submitted", data={"x": 1})
    entry.event = "approved"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(event="approved")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).event == "submitted"


def _tamper(sql, params):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The append-only trigger refuses this first (tested below); a database superuser
            # tampering would switch triggers off like this.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_verify_audit_fails_naming_the_edited_entry(capsys):
    entries = [record("submitted", data={"n": n}) for n in range(4)]
    call_command("verify_audit")
    assert "4 entries" in capsys.readouterr().out
    _tamper("UPDATE approvals_auditentry SET event = %s WHERE id = %s", ["approved", entries[2].pk])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert f"#{entries[2].seq} " in capsys.readouterr().err


def test_verify_audit_fails_on_a_deleted_entry(capsys):
    entries = [record("submitted", data={"n": n}) for n in range(3)]
    _tamper("DELETE FROM approvals_auditentry WHERE id = %s", [entries[1].pk])
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    assert "#3 " in capsys.readouterr().err


@pytest.mark.postgres
def test_postgres_trigger_refuses_update_and_delete_of_audit_rows():
    from django.db import DatabaseError, transaction

    entry = record("submitted")
    for sql in ("UPDATE approvals_auditentry SET event = 'x' WHERE id = %s",
                "DELETE FROM approvals_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).event == "submitted"
