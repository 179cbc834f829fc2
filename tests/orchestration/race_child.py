"""A separate OS process for the race tests (tests/orchestration/test_races.py): its own
Python, Django and database connection against the test database named in DATABASE_URL.

    python -m tests.orchestration.race_child schedule <now ISO> <batch size> <go file>
    python -m tests.orchestration.race_child lease <now ISO> <token id> <limit>

`schedule` waits until <go file> exists (so two children start together), runs the
scheduler and prints its report as JSON. `lease` leases due email touchpoints, prints
their ids as JSON and then waits to be killed (a channel that dies holding its lease).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")
    import django

    django.setup()
    from orchestration import due_queue, scheduler

    action, now = argv[0], datetime.fromisoformat(argv[1])
    if action == "schedule":
        batch_size, go = int(argv[2]), argv[3]
        while not os.path.exists(go):
            time.sleep(0.005)
        report = scheduler.run(now=now, batch_size=batch_size)
        print(json.dumps({"pid": os.getpid(), "evaluated": report.evaluated,
                          "created": report.created}), flush=True)
        return
    if action == "lease":
        leased = due_queue.lease(token_id=int(argv[2]), channel="email", markets={"US"},
                                 limit=int(argv[3]), now=now)
        print(json.dumps([item.touchpoint.pk for item in leased]), flush=True)
        while True:  # holding the lease until SIGKILLed
            time.sleep(1)
    raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
