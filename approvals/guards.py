"""Users are deactivated, never deleted: every signature and history row keeps its person."""

from django.db.models import ProtectedError


class UserDeletionRefused(ProtectedError):
    pass


def refuse_user_deletion(sender, instance, **kwargs):
    raise UserDeletionRefused(
        f"User {instance.get_username()} cannot be deleted: deactivate the account instead "
        "(clear 'active'), so every signature and history row keeps a printed name.",
        {instance},
    )
