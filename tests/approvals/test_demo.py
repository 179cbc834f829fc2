import io

import pytest

from approvals import demo
from approvals.audit import verify_chain
from approvals.models import Signature
from content import demo as content_demo
from content.demo import TARGET_STATES
from content.models import ContentModule

pytestmark = pytest.mark.django_db


def test_demo_reaches_the_target_states_through_signatures_and_is_idempotent():
    out = io.StringIO()
    content_demo.load(out)
    demo.load(out)
    for module in ContentModule.objects.filter(code__in=list(TARGET_STATES)):
        assert module.latest_version().state == TARGET_STATES[module.code], module.code
    approved = ContentModule.objects.filter(versions__state="approved").first()
    signatures = Signature.objects.filter(version__module=approved, meaning="approve")
    assert sorted(s.printed_name for s in signatures) == [
        "Jonas Weber (legal)", "Mira Keller (medical)", "Priya Natarajan (regulatory)"]
    count = Signature.objects.count()
    content_demo.load(io.StringIO())
    demo.load(out)
    assert "0 demo version(s) moved" in out.getvalue()
    assert Signature.objects.count() == count
    assert verify_chain()[1] is None
