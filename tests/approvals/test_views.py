"""Reviewer screens through HTTP: what a person sees and what a refused POST leaves."""

import json
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from approvals import services
from approvals.models import AuditEntry, Comment, Signature
from approvals.roles import role_group
from content.models import ModuleVersion
from content.permissions import grant_author_brand
from tests.factories import ReferenceFactory, UserFactory, VersionFactory

from .helpers import PASSWORD, approve_all

pytestmark = pytest.mark.django_db
CORPUS = Path("/work/shared/corpus")


def corpus_lines():
    lines = []
    for name in ("xss-vectors.txt", "template-injection.txt"):
        path = CORPUS / name
        if path.exists():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    return lines or ["<script>alert(1)</script>", "{{ 7*7 }}"]


def logged_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def decide_post(client, version, role, *, decision="approve", username=None,
                password=PASSWORD, sha=None, comment=""):
    data = {"role": role, "decision": decision, "password": password, "comment": comment,
            "expected_sha256": sha or version.sha256}
    if username:
        data["username"] = username
    return client.post(reverse("approvals:decide", args=[version.pk]), data)


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(reverse("approvals:inbox"))
    assert response.status_code == 302
    assert response["Location"].startswith("/review/login/")
    assert client.get("/review/login/").status_code == 200


def test_people_without_a_role_are_refused(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(reverse("approvals:inbox")).status_code == 403


def test_login_form_logs_a_reviewer_in(reviewers, client):
    response = client.post("/review/login/", {"username": "rev-medical", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("approvals:inbox")).status_code == 200
    assert client.post("/review/logout/").status_code == 302
    assert client.get(reverse("approvals:inbox")).status_code == 302


def test_inbox_lists_what_waits_for_my_role_in_few_queries(reviewers,
                                                            django_assert_max_num_queries):
    versions = [VersionFactory() for _ in range(4)]
    for version in versions:
        services.submit_for_review(version=version, actor=version.created_by)
    client = logged_in(reviewers["legal"])
    with django_assert_max_num_queries(15):
        response = client.get(reverse("approvals:inbox"))
    body = response.content.decode()
    for version in versions:
        assert version.module.code in body
    assert "Waiting for my role" in body


def test_review_page_shows_preview_diff_references_and_companions(reviewers):
    author = UserFactory(username="author-x")
    first = VersionFactory(body_html="<p>Old claim text.</p>", module__owner=author,
                           module__kind="claim", created_by=author)
    reference = ReferenceFactory(brand=first.module.brand, citation="Smith J. Heart Trial. 2024.")
    first.citations.add(reference)
    companion = VersionFactory(module__code="TST-ISI-001", module__brand=first.module.brand,
                               module__kind="isi")  # a US claim travels with its ISI
    first.requires.add(companion.module)
    services.submit_for_review(version=first, actor=author)
    approve_all(first, reviewers)
    second = first.module.new_version(author=author)
    second.body_html = "<p>New claim text.</p>"
    second.body_text = ""
    second.save()
    services.submit_for_review(version=second, actor=author)

    client = logged_in(reviewers["medical"])
    body = client.get(reverse("approvals:review", args=[second.pk])).content.decode()
    diff = body.split('id="diff"')[1].split("</section>")[0]
    assert 'data-from="v1 · approved"' in diff  # rendered word diff (approvals/diffs.py)
    assert "<del>Old</del>" in diff and "<ins>New</ins>" in diff
    assert "Smith J. Heart Trial. 2024." in body
    assert "TST-ISI-001" in body and "no approved version" in body
    assert reverse("approvals:preview", args=[second.pk, "email"]) in body
    assert f'name="expected_sha256" value="{second.sha256}"' in body
    assert "<script" not in body.replace('<script src="', "")  # no inline scripts

    preview = client.get(reverse("approvals:preview", args=[second.pk, "email"]))
    assert "New claim text." in preview.content.decode()
    assert "default-src 'none'" in preview["Content-Security-Policy"]
    assert client.get(reverse("approvals:preview", args=[second.pk, "tv"])).status_code == 404


def test_three_reviewers_sign_through_the_screens(submitted, reviewers):
    for role, user in reviewers.items():
        client = logged_in(user)
        page = client.get(reverse("approvals:review", args=[submitted.pk])).content.decode()
        assert 'name="username"' in page  # first signing of the session: user id too
        response = decide_post(client, submitted, role, username=user.username)
        assert response.status_code == 302, response.content.decode()[:2000]
        page = client.get(reverse("approvals:review", args=[submitted.pk])).content.decode()
        assert "Signed:" in page
    submitted.refresh_from_db()
    assert submitted.state == "approved"


def test_second_signing_in_a_session_needs_only_the_password(reviewers):
    first, second = VersionFactory(), VersionFactory()
    for version in (first, second):
        services.submit_for_review(version=version, actor=version.created_by)
    client = logged_in(reviewers["legal"])
    assert decide_post(client, first, "legal", username="rev-legal").status_code == 302
    page = client.get(reverse("approvals:review", args=[second.pk])).content.decode()
    assert 'id="decision-username"' not in page
    assert decide_post(client, second, "legal").status_code == 302
    assert Signature.objects.filter(signer=reviewers["legal"]).count() == 2


def test_session_cookie_alone_never_signs(submitted, reviewers):
    client = logged_in(reviewers["legal"])
    response = decide_post(client, submitted, "legal", username="rev-legal", password="")
    assert response.status_code == 400
    assert Signature.objects.count() == 0


@pytest.mark.parametrize("case,expected_status,code", [
    ("wrong_password", 403, "wrong_password"),
    ("stale", 409, "stale_version"),
    ("role", 403, "role_not_held"),
    ("own", 403, "own_version"),
    ("changes_without_comment", 400, "comment_required"),
])
def test_refused_decisions_show_why_and_change_nothing(submitted, reviewers, case,
                                                       expected_status, code):
    user, role, kwargs = reviewers["legal"], "legal", {}
    if case == "wrong_password":
        kwargs["password"] = "wrong"
    elif case == "stale":
        kwargs["sha"] = "f" * 64
    elif case == "role":
        role = "medical"
        user.groups.add(role_group("medical"))
        user.groups.remove(role_group("medical"))
    elif case == "own":
        user = submitted.created_by
        user.groups.add(role_group("legal"))
    elif case == "changes_without_comment":
        kwargs["decision"] = "request_changes"
    client = logged_in(user)
    response = decide_post(client, submitted, role, username=user.username, **kwargs)
    assert response.status_code == expected_status
    body = response.content.decode()
    assert f'data-code="{code}"' in body and "Refused:" in body
    assert Signature.objects.count() == 0
    assert ModuleVersion.objects.get(pk=submitted.pk).state == "in_review"


def test_forged_post_without_csrf_token_is_refused(submitted, reviewers):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewers["legal"])
    response = decide_post(client, submitted, "legal", username="rev-legal")
    assert response.status_code == 403
    assert 'data-code="csrf_failed"' in response.content.decode()
    assert Signature.objects.count() == 0
    assert AuditEntry.objects.get(event="csrf_refused").actor == reviewers["legal"]
    assert ModuleVersion.objects.get(pk=submitted.pk).state == "in_review"


def test_withdrawal_through_the_screen_needs_a_reason(submitted, reviewers):
    approve_all(submitted, reviewers)
    client = logged_in(reviewers["regulatory"])
    url = reverse("approvals:withdraw", args=[submitted.pk])
    data = {"role": "regulatory", "reason": "", "username": "rev-regulatory", "password": PASSWORD}
    response = client.post(url, data)
    assert response.status_code == 400
    assert 'data-code="reason_required"' in response.content.decode()
    assert ModuleVersion.objects.get(pk=submitted.pk).state == "approved"
    response = client.post(url, {**data, "reason": "Label change 2026-11"})
    assert response.status_code == 302
    assert ModuleVersion.objects.get(pk=submitted.pk).state == "withdrawn"


def test_author_submits_from_the_review_page(reviewers):
    version = VersionFactory()
    author = version.created_by
    grant_author_brand(author, version.module.brand)
    client = logged_in(author)
    page = client.get(reverse("approvals:review", args=[version.pk])).content.decode()
    assert 'id="submit-review"' in page
    assert client.post(reverse("approvals:submit", args=[version.pk])).status_code == 302
    assert ModuleVersion.objects.get(pk=version.pk).state == "in_review"
    assert client.post(reverse("approvals:submit", args=[version.pk])).status_code == 409


@pytest.mark.parametrize("payload", corpus_lines())
def test_comments_keep_hostile_text_inert(submitted, reviewers, payload):
    client = logged_in(reviewers["medical"])
    response = client.post(reverse("approvals:comment", args=[submitted.pk]),
                           {"anchor": "body", "body": payload})
    assert response.status_code == 302
    assert Comment.objects.get().body == payload.strip()
    body = client.get(reverse("approvals:review", args=[submitted.pk])).content.decode()
    comments = body.split('id="comments"')[1].split("<form")[0]
    assert escape(payload.strip()) in comments  # shown as text, escaped, never evaluated
    if "<" in payload:
        assert payload.strip() not in body


def test_history_tab_and_exports(submitted, reviewers):
    approve_all(submitted, reviewers)
    code = submitted.module.code
    client = logged_in(reviewers["medical"])
    page = client.get(reverse("approvals:history", args=[code])).content.decode()
    assert "approved" in page and "Regulatory Reviewer (rev-regulatory)" in page
    data = json.loads(client.get(reverse("approvals:export", args=[code, "json"])).content)
    assert [v["state"] for v in data["versions"]] == ["approved"]
    assert {s["role"] for s in data["signatures"]} == {"medical", "legal", "regulatory"}
    assert [e["event"] for e in data["audit_entries"]][-1] == "approved"
    assert any(h["model"] == "content.ModuleVersion" and "state" in h["changes"]
               for h in data["field_history"])
    csv_response = client.get(reverse("approvals:export", args=[code, "csv"]))
    assert csv_response["Content-Type"].startswith("text/csv")
    text = csv_response.content.decode()
    assert text.splitlines()[0].startswith("section,timestamp,actor,event,sentence,version")
    assert "signature" in text and "audit" in text and "field_history" in text


def test_export_neutralises_spreadsheet_formulas(submitted, reviewers):
    from approvals.export import as_csv, module_history

    services.add_comment(version=submitted, actor=reviewers["medical"], body="=HYPERLINK(1)")
    text = as_csv(module_history(submitted.module))
    assert "\n=" not in text and ",=" not in text


def test_metrics_dashboard_shows_cycle_time_chart(submitted, reviewers):
    approve_all(submitted, reviewers)
    client = logged_in(reviewers["legal"])
    body = client.get(reverse("approvals:metrics")).content.decode()
    assert "<svg" in body and submitted.module.brand.name in body
    assert "<rect" in body


def test_audit_of_refusals_through_the_screens(submitted, reviewers):
    client = logged_in(reviewers["legal"])
    decide_post(client, submitted, "legal", username="rev-legal", password="bad")
    assert AuditEntry.objects.filter(event="signature_failed").count() == 1


def test_admin_exports_history_and_offers_no_delete(submitted, reviewers):
    admin_user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = logged_in(admin_user)
    assert client.get("/admin/approvals/auditentry/").status_code == 200
    assert client.get("/admin/approvals/auditentry/export/").status_code == 200
    response = client.get("/admin/approvals/auditentry/export/",
                          {"module": submitted.module.code, "format": "json"})
    assert json.loads(response.content)["module"]["code"] == submitted.module.code
    signature_id = approve_all(submitted, reviewers).signatures.first().pk
    assert client.get(f"/admin/approvals/signature/{signature_id}/delete/").status_code == 403
    assert client.get(f"/admin/auth/user/{reviewers['legal'].pk}/delete/").status_code == 403


def test_admin_unlocks_signing(submitted, reviewers):
    from approvals.models import SigningState

    state = SigningState.objects.create(user=reviewers["legal"], consecutive_failures=5,
                                        locked_at="2026-01-01T00:00:00Z")
    client = logged_in(UserFactory(username="boss2", is_staff=True, is_superuser=True))
    response = client.post("/admin/approvals/signingstate/",
                           {"action": "unlock", "_selected_action": [state.pk]})
    assert response.status_code == 302
    state.refresh_from_db()
    assert state.locked_at is None and state.consecutive_failures == 0
    assert AuditEntry.objects.filter(event="signing_unlocked").exists()


def test_review_page_reads_in_a_bounded_number_of_queries(reviewers,
                                                          django_assert_max_num_queries):
    def submitted_with(companions, comments):
        version = VersionFactory(module__kind="claim")
        for n in range(companions):
            version.citations.add(ReferenceFactory(brand=version.module.brand))
            # The first companion is the brand's ISI: a US claim travels with it.
            companion = VersionFactory(module__brand=version.module.brand,
                                       module__kind="isi" if n == 0 else "body")
            version.requires.add(companion.module)  # signed with the version
        services.submit_for_review(version=version, actor=version.created_by)
        for n in range(comments):
            services.add_comment(version=version, actor=reviewers["medical"], body=f"Note {n}")
        return version

    version = submitted_with(5, 3)
    client = logged_in(reviewers["legal"])
    # The page reads the annotations panel (who may annotate / resolve) and two diff
    # baselines besides the version: a fixed number, whatever the size.
    with django_assert_max_num_queries(50) as captured:
        response = client.get(reverse("approvals:review", args=[version.pk]))
    assert response.status_code == 200
    # More companions and comments must not add queries (companions are frozen once
    # submitted: a second version carries more).
    more = submitted_with(10, 8)
    with django_assert_max_num_queries(len(captured.captured_queries)):
        client.get(reverse("approvals:review", args=[more.pk]))


def test_an_author_of_another_brand_sees_nothing_of_this_brand(submitted, reviewers):
    other = VersionFactory()
    outsider = other.created_by
    grant_author_brand(outsider, other.module.brand)
    client = logged_in(outsider)
    inbox = client.get(reverse("approvals:inbox")).content.decode()
    assert submitted.module.code not in inbox
    for url in (reverse("approvals:review", args=[submitted.pk]),
                reverse("approvals:preview", args=[submitted.pk, "email"]),
                reverse("approvals:history", args=[submitted.module.code]),
                reverse("approvals:export", args=[submitted.module.code, "json"])):
        assert client.get(url).status_code == 404, url
    response = client.post(reverse("approvals:comment", args=[submitted.pk]), {"body": "hi",
                                                                               "anchor": "general"})
    assert response.status_code == 404
    assert not Comment.objects.exists()


def test_csrf_refusal_on_an_api_path_answers_json(reviewers, rf):
    from approvals.views import csrf_failure

    request = rf.post("/api/v1/anything/")
    request.user = reviewers["legal"]
    response = csrf_failure(request, reason="CSRF token missing.")
    assert response.status_code == 403
    assert json.loads(response.content)["errors"][0]["code"] == "csrf_failed"


def test_diff_shows_hostile_text_escaped(reviewers):
    author = UserFactory(username="author-diff")
    first = VersionFactory(module__owner=author, created_by=author, body_text="Plain start.")
    services.submit_for_review(version=first, actor=author)
    approve_all(first, reviewers)
    second = first.module.new_version(author=author)
    # Template syntax is refused by the content rules; the XSS vectors are plain text here.
    payloads = [p for p in corpus_lines() if "{" not in p]
    second.body_text = "\n".join(payloads)
    second.save()
    services.submit_for_review(version=second, actor=author)
    body = logged_in(reviewers["medical"]).get(
        reverse("approvals:review", args=[second.pk])).content.decode()
    diff = body.split('id="diff"')[1].split("</section>")[0]
    for tag in ("<script", "<img", "<svg", "<iframe", "<object", "<math", "<details"):
        assert tag not in diff.lower(), tag
    assert "&lt;script&gt;" in diff


def test_staff_without_change_permission_cannot_unlock(reviewers):
    from django.contrib.auth.models import Permission

    from approvals.models import SigningState

    state = SigningState.objects.create(user=reviewers["legal"], consecutive_failures=5,
                                        locked_at="2026-01-01T00:00:00Z")
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_signingstate"))
    client = logged_in(clerk)
    client.post("/admin/approvals/signingstate/", {"action": "unlock",
                                                   "_selected_action": [state.pk]})
    state.refresh_from_db()
    assert state.locked_at is not None


def test_every_approvals_admin_page_opens(submitted, reviewers):
    approve_all(submitted, reviewers)
    services.add_comment(version=submitted, actor=reviewers["medical"], body="Fine")
    client = logged_in(UserFactory(username="boss3", is_staff=True, is_superuser=True))
    for name in ("auditentry", "signature", "reviewround", "comment", "signingstate"):
        assert client.get(f"/admin/approvals/{name}/").status_code == 200, name
    signature = Signature.objects.first()
    assert client.get(f"/admin/approvals/signature/{signature.pk}/change/").status_code == 200
    assert client.get(f"/admin/approvals/signature/{signature.pk}/history/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200
