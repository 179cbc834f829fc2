"""The approvals demo: target states reached through signatures, idempotently."""

import io

import pytest

from approvals.audit import verify_chain
from approvals.models import Signature
from content.models import ContentModule
from demo import approvals as demo_approvals
from demo import content as demo_content
from demo.specs import target_states

pytestmark = pytest.mark.django_db
TARGET_STATES = target_states()


def test_demo_reaches_the_target_states_through_signatures_and_is_idempotent():
    out = io.StringIO()
    demo_content.load(out)
    demo_approvals.load(out)
    for module in ContentModule.objects.filter(code__in=list(TARGET_STATES)):
        assert module.latest_version().state == TARGET_STATES[module.code], module.code
    approved = ContentModule.objects.filter(versions__state="approved").first()
    signatures = Signature.objects.filter(version__module=approved, meaning="approve")
    assert sorted(s.printed_name for s in signatures) == [
        "Jonas Weber (legal)", "Mira Keller (medical)", "Priya Natarajan (regulatory)"]
    count = Signature.objects.count()
    demo_content.load(io.StringIO())
    demo_approvals.load(out)
    assert "0 demo version(s) moved" in out.getvalue()
    assert Signature.objects.count() == count
    assert verify_chain()[1] is None
