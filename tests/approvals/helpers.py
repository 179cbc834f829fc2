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


def finish_round(version, reviewers):
    """Parallel review: the round closes when every role decided. The reviewers of the roles
    still to decide approve, so a change request already given returns the version."""
    from approvals.rounds import round_status

    version.refresh_from_db()
    for role in round_status(version).pending_roles:
        sign(version, reviewers[role], role)
    version.refresh_from_db()
    return version


def request_changes(version, user, role, reviewers, *, comment="Please fix"):
    """`user` requests changes for `role`; the other roles approve, so the round returns."""
    sign(version, user, role, "request_changes", comment=comment)
    return finish_round(version, reviewers)
