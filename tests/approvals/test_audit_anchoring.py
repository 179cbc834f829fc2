"""Signed checkpoints of the audit chain's head (approvals/anchoring.py), checked by verify_audit."""

import json
import logging

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from approvals import tasks
from approvals.anchoring import KEY_SOURCE_DERIVED, KEY_SOURCE_SETTING, seal, write_checkpoint
from approvals.audit import GENESIS_HASH, record
from approvals.models import AppendOnlyError, AuditCheckpoint, AuditEntry
from cms.logging import JsonFormatter

pytestmark = pytest.mark.django_db


def _verify(capsys, *args) -> tuple[int, str]:
    """Run verify_audit; (exit code, stdout + stderr)."""
    try:
        call_command("verify_audit", *args)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _delete_newest_entries(count: int) -> None:
    """Delete the newest entries behind the application, as someone with database access."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The trigger refuses this (tested below); only a superuser switching triggers off
            # gets here.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM approvals_auditentry WHERE seq > "
                       "(SELECT MAX(seq) FROM approvals_auditentry) - %s", [count])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_untouched_chain_passes_against_its_checkpoints(capsys):
    for n in range(3):
        record("submitted", data={"n": n})
    tasks.anchor_audit_chain.delay()
    record("decided", data={"n": 3})
    code, output = _verify(capsys, "--checkpoint")
    assert code == 0, output
    assert "4 entries verified against 1 checkpoints" in output
    assert list(AuditCheckpoint.objects.values_list("head_seq", "entry_count")) == [(3, 3), (4, 4)]
    code, output = _verify(capsys)
    assert (code, "against 2 checkpoints" in output) == (0, True), output


def test_deleting_the_newest_entry_is_detected_naming_it(capsys):
    for n in range(4):
        record("submitted", data={"n": n})
    write_checkpoint()
    _delete_newest_entries(1)
    assert AuditEntry.objects.count() == 3
    code, output = _verify(capsys)
    assert code == 1
    assert "entries #4 are missing: the chain ends at #3" in output
    assert "head #4" in output


def test_truncating_several_newest_entries_names_the_missing_range(capsys):
    for n in range(5):
        record("submitted", data={"n": n})
    write_checkpoint()
    _delete_newest_entries(3)
    code, output = _verify(capsys)
    assert code == 1
    assert "entries #3..#5 are missing: the chain ends at #2" in output


def test_replacing_the_newest_entries_is_detected_by_the_head_hash(capsys):
    for n in range(3):
        record("submitted", data={"n": n})
    anchored = write_checkpoint()
    _delete_newest_entries(1)
    record("submitted", data={"n": "rewritten"})  # a well-linked chain again, same length
    code, output = _verify(capsys)
    assert code == 1
    assert f"checkpoint {anchored.pk} (head #3)" in output
    assert f"the checkpoint anchored {anchored.head_hash}" in output


def test_a_forged_checkpoint_fails(capsys):
    for n in range(2):
        record("submitted", data={"n": n})
    genuine = write_checkpoint()
    # Someone with database access anchors a head of their own making, without the key.
    forged = AuditCheckpoint.objects.create(
        head_seq=genuine.head_seq, head_hash=genuine.head_hash, entry_count=genuine.entry_count,
        created_at=genuine.created_at, key_source=genuine.key_source, hmac="0" * 64,
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"checkpoint {forged.pk} (head #2): its HMAC does not match" in output


def test_a_checkpoint_made_under_another_key_fails(capsys, settings):
    record("submitted")
    settings.TESSERA_AUDIT_ANCHOR_KEY = "first-anchor-key-" + "k" * 30
    checkpoint = write_checkpoint()
    assert checkpoint.key_source == KEY_SOURCE_SETTING
    assert _verify(capsys)[0] == 0
    settings.TESSERA_AUDIT_ANCHOR_KEY = "another-anchor-key-" + "k" * 30
    code, output = _verify(capsys)
    assert code == 1
    assert "HMAC does not match" in output


def test_without_an_anchor_key_the_key_is_derived_from_secret_key(settings):
    settings.TESSERA_AUDIT_ANCHOR_KEY = ""
    checkpoint = write_checkpoint()
    assert checkpoint.key_source == KEY_SOURCE_DERIVED
    assert (checkpoint.head_seq, checkpoint.head_hash, checkpoint.entry_count) == (0, GENESIS_HASH, 0)
    settings.SECRET_KEY = "a-different-secret-key-" + "s" * 40
    assert seal(0, GENESIS_HASH, 0, checkpoint.created_at, KEY_SOURCE_DERIVED) != checkpoint.hmac


def test_a_broken_chain_is_not_anchored(capsys):
    for n in range(3):
        record("submitted", data={"n": n})
    with connection.cursor() as cursor:  # a gap in the middle of the chain
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM approvals_auditentry WHERE seq = 2")
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    code, output = _verify(capsys, "--checkpoint")
    assert code == 1
    assert not AuditCheckpoint.objects.exists()


def test_checkpoints_are_append_only_through_the_orm():
    checkpoint = write_checkpoint()
    checkpoint.head_seq = 99
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    with pytest.raises(AppendOnlyError):
        checkpoint.delete()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.update(head_seq=99)
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()


def test_a_checkpoint_goes_to_the_json_log_too(caplog):
    record("submitted")
    with caplog.at_level(logging.INFO, logger="tessera.audit.anchor"):
        checkpoint = write_checkpoint()
    [line] = [r for r in caplog.records if r.name == "tessera.audit.anchor"]
    logged = json.loads(JsonFormatter().format(line))
    assert logged["audit_checkpoint"] == {
        "id": checkpoint.pk, "head_seq": 1, "head_hash": checkpoint.head_hash, "entry_count": 1,
        "created_at": logged["audit_checkpoint"]["created_at"],
        "key_source": checkpoint.key_source, "hmac": checkpoint.hmac,
    }
    assert logged["logger"] == "tessera.audit.anchor"


def test_beat_anchors_the_chain_every_15_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["approvals-anchor-audit-chain"]
    assert entry == {"task": "approvals.anchor_audit_chain", "schedule": 900.0}
    assert tasks.anchor_audit_chain.name == entry["task"]


@pytest.mark.postgres
def test_postgres_refuses_deleting_the_newest_entry_and_changing_checkpoints(capsys):
    record("submitted")
    newest = record("submitted")
    checkpoint = write_checkpoint()
    statements = [
        ("DELETE FROM approvals_auditentry WHERE seq = %s", [newest.seq]),
        ("TRUNCATE approvals_auditentry", None),
        ("UPDATE approvals_auditcheckpoint SET head_seq = 1 WHERE id = %s", [checkpoint.pk]),
        ("DELETE FROM approvals_auditcheckpoint WHERE id = %s", [checkpoint.pk]),
        ("TRUNCATE approvals_auditcheckpoint", None),
    ]
    for sql, params in statements:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                # Rows inserted in this test's transaction have deferred foreign-key checks
                # pending, which TRUNCATE would trip over before reaching the trigger.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(sql, params)
    assert AuditEntry.objects.count() == 2
    assert _verify(capsys)[0] == 0
