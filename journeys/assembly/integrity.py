"""What happens when content read for assembly is not what MLR signed (`snapshot`).

The version is refused (`integrity_mismatch`, by `rules.integrity_errors`); this module
makes it known: one security entry in the audit trail and one notification to the
regulatory reviewers per version and content read, however many processes, requests or
batches meet it. Only the detection path pays for this (a read of the audit entries of
that version); content that matches costs nothing here.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction

from content.models import ModuleVersion

EVENT = "integrity_mismatch"

logger = logging.getLogger(__name__)


def report(version_id: int, *, detail: str, read_sha256: str, signed_sha256: str) -> bool:
    """Audit and notify once per (version, `read_sha256`); True when this call did.

    The version row is locked while checking and writing, so two processes meeting the
    same change write one entry. A failure to record never lets the content through: the
    refusal stands, the error is logged."""
    from approvals import audit
    from approvals.models import AuditEntry
    from approvals.notifications import notify_integrity_mismatch

    try:
        with transaction.atomic():
            version = (ModuleVersion.objects.select_for_update(of=("self",))
                       .select_related("module__brand").filter(pk=version_id).first())
            if version is None:
                return False
            known = AuditEntry.objects.filter(event=EVENT, target_id=str(version_id)
                                              ).values_list("data", flat=True)
            if any(data.get("read_sha256") == read_sha256 for data in known):
                return False
            audit.record(EVENT, target=version, data={
                "security": True, "detail": detail, "read_sha256": read_sha256,
                "signed_sha256": signed_sha256, "brand": version.module.brand.slug})
            notify_integrity_mismatch(version, detail=detail)
        return True
    except DatabaseError:
        logger.exception("Could not record the integrity mismatch of version %s", version_id)
        return False
