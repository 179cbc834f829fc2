"""One module's full history for inspectors, as JSON or CSV.

Versions (with review rounds), signatures, the audit entries about the module, comments,
and the field-by-field history (django-simple-history) of the module, its versions, rounds,
signatures and comments. A fixed number of queries, whatever the history's length.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from content.models import ContentModule, ModuleVersion

from .models import AuditEntry, Comment, ReviewRound, Signature

SKIPPED_HISTORY_FIELDS = {"history_id", "history_date", "history_change_reason",
                          "history_type", "history_user_id", "history_user"}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _user_name(user) -> str:
    if user is None:
        return ""
    full = user.get_full_name().strip()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _field_history(history_qs, label: str) -> list[dict]:
    """Each historical row with the fields that changed since the previous row of the object."""
    model = history_qs.model
    names = [f.attname for f in model._meta.fields if f.attname not in SKIPPED_HISTORY_FIELDS]
    rows = []
    previous: dict = {}
    for record in history_qs.select_related("history_user").order_by("id", "history_date",
                                                                       "history_id"):
        values = {name: getattr(record, name) for name in names}
        before = previous.get(record.id)
        if before is None:
            changes = {k: [None, v] for k, v in values.items()}
        else:
            changes = {k: [before[k], v] for k, v in values.items() if before[k] != v}
        previous[record.id] = values
        rows.append({
            "model": label,
            "object_id": record.id,
            "history_date": _iso(record.history_date),
            "history_type": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
            "history_user": _user_name(record.history_user),
            "changes": changes,
        })
    return rows


def module_history(module: ContentModule) -> dict:
    versions = list(ModuleVersion.objects.filter(module=module).select_related("created_by")
                    .order_by("number"))
    version_ids = [v.pk for v in versions]
    numbers = {v.pk: v.number for v in versions}
    rounds: dict[int, list[dict]] = {pk: [] for pk in version_ids}
    for r in ReviewRound.objects.filter(version_id__in=version_ids).select_related("submitted_by"):
        rounds[r.version_id].append({
            "number": r.number, "sha256": r.sha256, "submitted_by": _user_name(r.submitted_by),
            "submitted_at": _iso(r.submitted_at), "due_at": _iso(r.due_at), "outcome": r.outcome,
            "closed_at": _iso(r.closed_at),
        })
    signatures = [
        {**s.manifest_dict(), "version": numbers[s.version_id], "comment": s.comment}
        for s in Signature.objects.filter(version_id__in=version_ids).order_by("signed_at", "id")
    ]
    comments = [
        {"version": numbers[c.version_id], "round": c.round, "anchor": c.anchor,
         "author": _user_name(c.author), "created_at": _iso(c.created_at), "sha256": c.sha256,
         "body": c.body}
        for c in Comment.objects.filter(version_id__in=version_ids).select_related("author")
    ]
    audit = [
        {"seq": e.seq, "created_at": _iso(e.created_at), "event": e.event,
         "actor": e.actor_name, "target": e.target_repr, "target_type": e.target_type,
         "target_id": e.target_id, "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash}
        for e in AuditEntry.objects.filter(module_code=module.code).order_by("seq")
    ]
    field_history = (
        _field_history(ContentModule.history.filter(id=module.pk), "content.ContentModule")
        + _field_history(ModuleVersion.history.filter(id__in=version_ids), "content.ModuleVersion")
        + _field_history(ReviewRound.history.filter(version_id__in=version_ids),
                         "approvals.ReviewRound")
        + _field_history(Signature.history.filter(version_id__in=version_ids),
                         "approvals.Signature")
        + _field_history(Comment.history.filter(version_id__in=version_ids), "approvals.Comment")
    )
    return {
        "module": {
            "code": module.code, "title": module.title, "brand": module.brand.name,
            "kind": module.kind, "purpose": module.purpose, "owner": _user_name(module.owner),
        },
        "exported_at": _iso(timezone.now()),
        "versions": [
            {"number": v.number, "state": v.state, "sha256": v.sha256,
             "created_by": _user_name(v.created_by), "created_at": _iso(v.created_at),
             "approved_at": _iso(v.approved_at), "expires_at": _iso(v.expires_at),
             "withdrawn_at": _iso(v.withdrawn_at), "withdrawal_reason": v.withdrawal_reason,
             "review_rounds": rounds[v.pk]}
            for v in versions
        ],
        "signatures": signatures,
        "comments": comments,
        "audit_entries": audit,
        "field_history": field_history,
    }


def as_json(history: dict) -> str:
    return json.dumps(history, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)


CSV_COLUMNS = ["section", "timestamp", "who", "what", "version", "sha256", "detail"]


def _csv_safe(value: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ would be evaluated.
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def as_csv(history: dict) -> str:
    """One row per event, oldest first within each section; details as JSON."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = []
    for v in history["versions"]:
        rows.append(["version", v["created_at"], v["created_by"], v["state"], v["number"],
                     v["sha256"], v])
    for s in history["signatures"]:
        rows.append(["signature", s["signed_at"], s["printed_name"], f"{s['role']}:{s['meaning']}",
                     s["version"], s["sha256"], s])
    for c in history["comments"]:
        rows.append(["comment", c["created_at"], c["author"], c["anchor"], c["version"],
                     c["sha256"], c])
    for e in history["audit_entries"]:
        rows.append(["audit", e["created_at"], e["actor"], e["event"], "", "", e])
    for h in history["field_history"]:
        rows.append(["field_history", h["history_date"], h["history_user"],
                     f"{h['model']} {h['history_type']}", "", "", h])
    for row in rows:
        *cells, detail = row
        writer.writerow([_csv_safe(str(c if c is not None else "")) for c in cells]
                        + [_csv_safe(json.dumps(detail, cls=DjangoJSONEncoder, ensure_ascii=False))])
    return out.getvalue()
