from approvals import services
from approvals.signing import Credentials

PASSWORD = "correct-horse-battery"


def sign(version, user, role, decision="approve", *, comment="", sha256=None, password=PASSWORD,
         session=None):
    """Decide as `user` with full credentials (user id + password), like a first signing."""
    return services.decide(
        version=version, actor=user, role=role, decision=decision,
        expected_sha256=version.sha256 if sha256 is None else sha256,
        credentials=Credentials(password=password, username=user.username),
        comment=comment or ("Please fix" if decision == "request_changes" else ""),
        session=session,
    )


def approve_all(version, reviewers):
    for role, user in reviewers.items():
        sign(version, user, role)
    version.refresh_from_db()
    return version
