"""What the benches share about the local services (not a benchmark: run_all skips names
starting with `_`): whether one answers, and a scratch PostgreSQL database per run."""

from __future__ import annotations

import socket


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server of `server_url`; returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
