"""Run one callable from many threads at the same instant, each on its own DB connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None


def run_at_once(action: Callable[[int], object], *, threads: int = 20,
                timeout: float = 120) -> list[Outcome]:
    """Call action(i) in `threads` threads released together; return every outcome."""
    barrier = threading.Barrier(threads)
    outcomes = [Outcome() for _ in range(threads)]

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index].value = action(index)
        except BaseException as exc:  # collected and asserted on by the test
            outcomes[index].error = exc
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout)
    stuck = [thread for thread in pool if thread.is_alive()]
    if stuck:
        raise TimeoutError(f"{len(stuck)} of {threads} threads still running after {timeout}s")
    return outcomes
