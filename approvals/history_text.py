"""The module history in words: one sentence per audit entry, and readable times.

"Camille Martin (Medical) requested changes on v2 · round 3". The history page and the CSV
export (its `sentence` column) both use these; the audit entry itself is unchanged.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .workflow import round_label

_USER_ID = re.compile(r"\s*\([^()]*\)\s*$")
_VERSION = re.compile(r"\bv(\d+)\s*$")

ROLE_LABELS = {"medical": "Medical", "legal": "Legal", "regulatory": "Regulatory",
               "author": "Author"}
MEANINGS = {"approve": "approved", "request_changes": "requested changes on",
            "withdraw": "withdrew", "recall": "recalled"}
REFUSALS = {"decision_refused": "a decision", "withdrawal_refused": "a withdrawal",
            "submission_refused": "a submission", "recall_refused": "a recall",
            "annotation_refused": "an annotation"}


def person(name: str | None) -> str:
    """"Camille Martin (cmartin)" → "Camille Martin"; empty → "The system"."""
    if not name or name == "system":
        return "The system"
    stripped = _USER_ID.sub("", name)
    return stripped or name


def readable_time(value: datetime | str | None) -> str:
    """"29 Nov 2026, 05:57 UTC" in the current time zone, without microseconds."""
    if not value:
        return ""
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{local.day} {local:%b %Y, %H:%M} {local.tzname() or ''}".strip()


def _version_label(entry: dict, data: dict) -> str:
    match = _VERSION.search(entry.get("target") or "")
    number = int(match.group(1)) if match else None
    if number is None:
        return entry.get("target") or "this module"
    return round_label(number, data.get("round"))


def _roles(values) -> str:
    names = [ROLE_LABELS.get(v, str(v)) for v in (values or [])]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def sentence(entry: dict) -> str:
    """One audit entry (as `export.module_history` gives it) in a sentence."""
    data = entry.get("data") or {}
    event = entry.get("event", "")
    who = person(entry.get("actor"))
    where = _version_label(entry, data)
    role = ROLE_LABELS.get(data.get("role", ""), data.get("role", ""))
    who_as = f"{who} ({role})" if role else who
    if event == "decided":
        verb = MEANINGS.get(data.get("meaning", ""), data.get("meaning", "decided"))
        text = f"{who_as} {verb} {where}"
        comment = (data.get("comment") or "").strip()
        return text + (f": “{comment}”" if comment else "")
    if event == "submitted":
        return f"{who} submitted {where} for MLR review"
    if event == "changes_requested":
        roles = _roles(data.get("roles") or ([data["role"]] if data.get("role") else []))
        text = f"{where} returned to its author with the change requests of {roles or 'the reviewers'}"
        if data.get("undecided_roles"):
            text += f"; {_roles(data['undecided_roles'])} had not decided by the due date"
        return text
    if event == "approved":
        return f"{where} approved by Medical, Legal and Regulatory"
    if event == "withdrawn":
        reason = (data.get("reason") or "").strip()
        return f"{who_as} withdrew {where}" + (f": “{reason}”" if reason else "")
    if event == "recalled":
        return f"{who} recalled {where} before any decision"
    if event == "expired":
        return f"{where} expired"
    if event == "expiry_notice_sent":
        return f"Expiry notice sent for {where}"
    if event == "commented":
        return f"{who} commented on {where}"
    if event == "annotation_created":
        return f"{who_as} annotated {where} ({data.get('kind', 'text')})"
    if event == "annotation_resolved":
        return f"{who} resolved a {role or 'reviewer'} annotation on {where}"
    if event == "annotation_reopened":
        return f"{who} reopened a {role or 'reviewer'} annotation on {where}"
    if event == "review_reminder_sent":
        return f"Reminder sent to {_roles(data.get('roles')) or 'the reviewers'} for {where}"
    if event == "review_escalated":
        return f"{where} escalated ({_roles(data.get('roles')) or 'reviewers'} overdue)"
    if event == "form_2253_recorded":
        return f"{who} recorded the Form 2253 submission of {where}"
    if event in REFUSALS:
        detail = (data.get("detail") or data.get("code") or "").strip()
        return f"{who} was refused {REFUSALS[event]} on {where}" + (f": {detail}" if detail else "")
    if event == "signature_failed":
        return f"{who} entered a wrong signing password on {where}"
    if event == "integrity_mismatch":
        return f"Integrity check failed for {where}: content no longer matches its signatures"
    return f"{who}: {event.replace('_', ' ')} ({where})"


def signature_sentence(*, printed_name: str, role: str, meaning: str, version: int,
                       round_number: int | None) -> str:
    """"Camille Martin (Medical) requested changes on v2 · round 3"."""
    role_label = ROLE_LABELS.get(role, role)
    verb = MEANINGS.get(meaning, meaning.replace("_", " "))
    return f"{person(printed_name)} ({role_label}) {verb} {round_label(version, round_number)}"
