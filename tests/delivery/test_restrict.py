"""Channel records: a token sees its own tokens, jobs and webhooks; people only their jobs
(and superusers everything in the admin)."""

import pytest

from cms.api.auth import ChannelClient
from delivery.models import AssemblyJob, ChannelToken, WebhookSubscription
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_of(token):
    return ChannelClient(token_id=token.pk, name=token.name, channels=frozenset({"email"}),
                         jurisdictions=frozenset({"US"}), rate_limit="")


@pytest.fixture
def records(db):
    tokens = [ChannelToken.objects.create(name=n, key_prefix=n[:4], key_hash=n * 8)
              for n in ("aaaa", "bbbb")]
    person = UserFactory(username="planner")
    jobs = [AssemblyJob.objects.create(token=t, owner_key=f"token:{t.pk}", journey_slug="j",
                                       step_key="s", channel="email", jurisdiction="US",
                                       locale="en") for t in tokens]
    jobs.append(AssemblyJob.objects.create(user=person, owner_key=f"user:{person.pk}",
                                           journey_slug="j", step_key="s", channel="email",
                                           jurisdiction="US", locale="en"))
    hooks = [WebhookSubscription.objects.create(token=t, url="https://example.test/h",
                                                secret="s") for t in tokens]
    return tokens, person, jobs, hooks


def test_a_token_sees_only_its_own_records(records):
    tokens, _person, jobs, hooks = records
    caller = client_of(tokens[0])
    assert list(ChannelToken.objects.restrict(caller)) == [tokens[0]]
    assert list(AssemblyJob.objects.restrict(caller)) == [jobs[0]]
    assert list(WebhookSubscription.objects.restrict(caller)) == [hooks[0]]


def test_a_person_sees_their_jobs_and_no_token_or_webhook(records):
    _tokens, person, jobs, _hooks = records
    assert list(AssemblyJob.objects.restrict(person)) == [jobs[2]]
    assert not ChannelToken.objects.restrict(person).exists()
    assert not WebhookSubscription.objects.restrict(person).exists()
    assert not AssemblyJob.objects.restrict(None).exists()


def test_superusers_see_every_token_and_webhook(records):
    root = UserFactory(username="root", is_superuser=True)
    assert ChannelToken.objects.restrict(root).count() == 2
    assert WebhookSubscription.objects.restrict(root).count() == 2
