"""Load every app's demo data in floor order, then print the demo logins; safe to re-run."""

from __future__ import annotations

from . import approvals, content, delivery, events, journeys
from .specs import demo_users

# Floor order: each step needs what the one before it created.
STEPS = (content.load, approvals.load, journeys.load, delivery.load, events.load)


def print_logins(out) -> None:
    out.write("\nDemo logins (http://127.0.0.1:8000/admin/ and /review/):\n")
    for user in demo_users():
        out.write(f"  {user.username:<18} {user.password:<20} {user.role}\n")


def load_all(out) -> None:
    for load in STEPS:
        load(out)
    print_logins(out)
