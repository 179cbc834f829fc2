"""Workflow signals for other apps (webhooks, caches). Sent after the transaction commits.

- `version_approved(sender=ModuleVersion, version=...)`
- `version_withdrawn(sender=ModuleVersion, version=..., reason=..., actor=...)`
- `version_expired(sender=ModuleVersion, version=...)`

Receivers run after commit, so a receiver's failure cannot undo the decision; receivers
that do slow work should queue a Celery task.
"""

from django.dispatch import Signal

version_approved = Signal()
version_withdrawn = Signal()
version_expired = Signal()
