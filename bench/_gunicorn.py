"""Start gunicorn for a benchmark and wait until it answers /healthz (not a benchmark:
run_all skips names starting with `_`)."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict, port: int, tmp: Path, *, timeout: float = 60) -> subprocess.Popen:
    """gunicorn with the project's config and `env`; its log in `tmp`/gunicorn.log."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "cms" / "gunicorn.conf.py"),
         "cms.wsgi"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=open(tmp / "gunicorn.log", "wb"), start_new_session=True)  # noqa: SIM115
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"gunicorn did not start; see {tmp / 'gunicorn.log'}")
