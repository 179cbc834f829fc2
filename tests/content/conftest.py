"""People and brands for the content tests: two brands, an author of each, a reviewer."""

import pytest
from django.contrib.auth.models import Group

from content.permissions import grant_author_brand
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory


def staff_user(username, *groups, superuser=False):
    user = UserFactory(username=username, is_staff=True, is_superuser=superuser)
    for name in groups:
        # get_or_create: a transactional test elsewhere may have flushed the seeded groups.
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def brand_a(db):
    return BrandFactory(name="Alphazen", slug="alphazen")


@pytest.fixture
def brand_b(db):
    return BrandFactory(name="Betavane", slug="betavane")


@pytest.fixture
def author_a(brand_a):
    user = staff_user("author.alpha", "authors")
    grant_author_brand(user, brand_a)
    return user


@pytest.fixture
def author_b(brand_b):
    user = staff_user("author.beta", "authors")
    grant_author_brand(user, brand_b)
    return user


@pytest.fixture
def reviewer(db):
    return staff_user("reviewer.medical", "mlr-medical")


@pytest.fixture
def superuser(db):
    return staff_user("root", superuser=True)


@pytest.fixture
def client_a(client, author_a):
    client.force_login(author_a)
    return client


@pytest.fixture
def version_a(author_a, brand_a):
    module = ModuleFactory(code="ALP-BODY-001", brand=brand_a, owner=author_a)
    return VersionFactory(module=module)


@pytest.fixture
def version_b(author_b, brand_b):
    module = ModuleFactory(code="BET-BODY-001", brand=brand_b, owner=author_b)
    return VersionFactory(module=module)



@pytest.fixture
def eager_celery():
    """Run tasks in-process even in the services profile (where a broker is configured)."""
    from cms.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Demo users are created with real passwords; PBKDF2 would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
