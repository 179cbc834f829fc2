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

from .history_text import sentence
from .models import Annotation, AuditEntry, Comment, ReviewRound, Signature

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
    annotations = [
        {"id": a.pk, "version": numbers[a.version_id], "round": a.round, "role": a.role,
         "kind": a.kind, "anchor": a.anchor, "author": _user_name(a.author),
         "created_at": _iso(a.created_at), "sha256": a.sha256, "body": a.body,
         "state": a.state, "anchor_changed": a.anchor_changed,
         "resolved_by": _user_name(a.resolved_by), "resolved_at": _iso(a.resolved_at),
         "resolution_note": a.resolution_note}
        for a in Annotation.objects.filter(version_id__in=version_ids)
        .select_related("author", "resolved_by").order_by("created_at", "id")
    ]
    audit = [
        {"seq": e.seq, "created_at": _iso(e.created_at), "event": e.event,
         "actor": e.actor_name, "target": e.target_repr, "target_type": e.target_type,
         "target_id": e.target_id, "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash}
        for e in AuditEntry.objects.filter(module_code=module.code).order_by("seq")
    ]
    for entry in audit:
        entry["sentence"] = sentence(entry)
    field_history = (
        _field_history(ContentModule.history.filter(id=module.pk), "content.ContentModule")
        + _field_history(ModuleVersion.history.filter(id__in=version_ids), "content.ModuleVersion")
        + _field_history(ReviewRound.history.filter(version_id__in=version_ids),
                         "approvals.ReviewRound")
        + _field_history(Signature.history.filter(version_id__in=version_ids),
                         "approvals.Signature")
        + _field_history(Comment.history.filter(version_id__in=version_ids), "approvals.Comment")
        + _field_history(Annotation.history.filter(version_id__in=version_ids),
                         "approvals.Annotation")
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
        "annotations": annotations,
        "audit_entries": audit,
        "field_history": field_history,
    }


def as_json(history: dict) -> str:
    return json.dumps(history, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)


# One row per event, one column per field (a field an event lacks is empty). Times are ISO 8601
# UTC to the second. Audit data keys without a column of their own get a `data.<key>` column.
CSV_COLUMNS = [
    "section", "timestamp", "actor", "event", "sentence", "version", "round", "role",
    "meaning", "state", "sha256", "kind", "anchor", "body", "field", "old_value", "new_value",
    "record", "approved_at", "expires_at", "withdrawn_at", "due_at", "closed_at",
    "resolved_by", "resolved_at", "seq", "hash", "prev_hash",
]
# Audit data keys that land in a named column.
_AUDIT_DATA_COLUMNS = {"round": "round", "role": "role", "meaning": "meaning",
                       "sha256": "sha256", "comment": "body", "reason": "body", "note": "body",
                       "kind": "kind", "expires_at": "expires_at", "due_at": "due_at"}


def _csv_safe(value: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ would be evaluated.
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def _seconds(value: str | None) -> str:
    """ISO 8601 UTC to the second: "2026-11-29T05:57:13Z"."""
    if not value:
        return ""
    head, _, _ = value.partition(".")
    return head if head.endswith("Z") else head.split("+")[0] + "Z"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "; ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def csv_rows(history: dict) -> tuple[list[str], list[dict]]:
    """(columns, rows): the history as flat rows, one field per column."""
    rows: list[dict] = []
    for v in history["versions"]:
        rows.append({"section": "version", "timestamp": v["created_at"], "actor": v["created_by"],
                     "event": "created", "version": v["number"], "state": v["state"],
                     "sha256": v["sha256"], "approved_at": v["approved_at"],
                     "expires_at": v["expires_at"], "withdrawn_at": v["withdrawn_at"],
                     "body": v["withdrawal_reason"]})
        for r in v["review_rounds"]:
            rows.append({"section": "round", "timestamp": r["submitted_at"],
                         "actor": r["submitted_by"], "event": "submitted", "version": v["number"],
                         "round": r["number"], "state": r["outcome"], "sha256": r["sha256"],
                         "due_at": r["due_at"], "closed_at": r["closed_at"]})
    for s in history["signatures"]:
        rows.append({"section": "signature", "timestamp": s["signed_at"], "actor": s["printed_name"],
                     "event": "signed", "version": s["version"], "round": s["round"],
                     "role": s["role"], "meaning": s["meaning"], "sha256": s["sha256"],
                     "body": s["comment"]})
    for c in history["comments"]:
        rows.append({"section": "comment", "timestamp": c["created_at"], "actor": c["author"],
                     "event": "commented", "version": c["version"], "round": c["round"],
                     "kind": c["anchor"], "sha256": c["sha256"], "body": c["body"]})
    for a in history.get("annotations", []):
        rows.append({"section": "annotation", "timestamp": a["created_at"], "actor": a["author"],
                     "event": "annotated", "version": a["version"], "round": a["round"],
                     "role": a["role"], "kind": a["kind"], "anchor": a["anchor"],
                     "state": a["state"], "sha256": a["sha256"], "body": a["body"],
                     "resolved_by": a["resolved_by"], "resolved_at": a["resolved_at"]})
    extra: list[str] = []
    for e in history["audit_entries"]:
        row = {"section": "audit", "timestamp": e["created_at"], "actor": e["actor"],
               "event": e["event"], "sentence": e.get("sentence", ""), "record": e["target"],
               "seq": e["seq"], "hash": e["hash"], "prev_hash": e["prev_hash"]}
        for key, value in (e["data"] or {}).items():
            column = _AUDIT_DATA_COLUMNS.get(key)
            if column is None:
                column = f"data.{key}"
                if column not in extra:
                    extra.append(column)
            row[column] = value
        rows.append(row)
    for h in history["field_history"]:
        for name, pair in h["changes"].items():
            rows.append({"section": "field_history", "timestamp": h["history_date"],
                         "actor": h["history_user"], "event": h["history_type"],
                         "record": f"{h['model']} {h['object_id']}", "field": name,
                         "old_value": pair[0], "new_value": pair[1]})
    return CSV_COLUMNS + sorted(extra), rows


def as_csv(history: dict) -> str:
    """One row per event, one column per field; times to the second; formulas neutralised."""
    columns, rows = csv_rows(history)
    times = {"timestamp", "approved_at", "expires_at", "withdrawn_at", "due_at", "closed_at",
             "resolved_at"}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_safe(_seconds(_cell(row.get(c))) if c in times and row.get(c)
                                   else _cell(row.get(c))) for c in columns])
    return out.getvalue()
