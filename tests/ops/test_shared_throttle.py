"""A token's rate limit is global: two gunicorn workers count in the shared cache (Redis
in the services profile), so the token gets its limit once, not once per worker."""

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.api.builders import token
from tests.ops.test_serve import free_port
from tests.services import _database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
LIMIT = 10


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_share_one_token_limit(tmp_path):
    _token, key = token(rate_limit=f"{LIMIT}/min", name="Shared limit")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(connection.settings_dict),
           "WEB_CONCURRENCY": "2", "PORT": str(port), "HOST": "127.0.0.1",
           "GUNICORN_MAX_REQUESTS": "0", "TESSERA_LOG_LEVEL": "WARNING"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "cms" / "gunicorn.conf.py"),
             "cms.wsgi"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_ready(port, server, log_path)
        if time.time() % 60 > 40:  # the limit counts in fixed minutes: stay inside one
            time.sleep(61 - time.time() % 60)
        statuses = []
        for _ in range(3 * LIMIT):  # a new connection each time: both workers take some
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/v1/modules/", headers={"Authorization": f"Token {key}",
                                                             "Connection": "close"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            conn.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert statuses.count(200) == LIMIT, (statuses, log_path.read_text()[-2000:])
    assert statuses.count(429) == 2 * LIMIT


def wait_ready(port: int, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and server.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(log_path.read_text()[-3000:])
