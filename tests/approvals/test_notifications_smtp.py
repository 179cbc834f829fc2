"""Notifications go out through a real SMTP conversation (aiosmtpd on 127.0.0.1)."""

import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from approvals import services
from tests.factories import VersionFactory

from .helpers import approve_all

pytestmark = pytest.mark.django_db


class Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    yield collector
    controller.stop()


def test_reviewers_and_owner_get_real_emails(smtp_server, reviewers,
                                             django_capture_on_commit_callbacks):
    version = VersionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_for_review(version=version, actor=version.created_by)
    recipients, message = smtp_server.messages[0]
    assert sorted(recipients) == sorted(u.email for u in reviewers.values())
    assert f"Review needed: {version.module.code} v1" in message["Subject"]
    with django_capture_on_commit_callbacks(execute=True):
        approve_all(version, reviewers)
    recipients, message = smtp_server.messages[-1]
    assert recipients == [version.created_by.email]
    assert "approved" in message["Subject"]
