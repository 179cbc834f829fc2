"""Run every benchmark in bench/ and print their figures (what `make bench` runs).

    .venv/bin/python bench/run_all.py [--soak] [--only NAME[,NAME]] [--timeout 1200]

Runs each `bench/*.py` present (assembly, api, scale, ...) in its own process, one after the
other, and prints its `name: value unit` lines under a header. The soak test
(`bench/soak.py`) runs only with --soak. Benchmarks that need the local PostgreSQL and Redis
(scale, soak) are skipped, with the reason, when those do not answer. Exits non-zero if any
benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NOT_BENCHMARKS = {"run_all"}
OPTIONAL = {"soak": "--soak"}
NEEDS_SERVICES = {"scale", "soak"}


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", action="store_true", help="also run bench/soak.py")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per benchmark")
    args = parser.parse_args()

    names = sorted(p.stem for p in BENCH.glob("*.py")
                   if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_"))
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(names)
        if unknown:
            print(f"run_all: no benchmark named {', '.join(sorted(unknown))}; have "
                  f"{', '.join(names)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    services_up = answers("127.0.0.1", 5432) and answers("127.0.0.1", 6379)

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    failed = []
    for name in names:
        if name in OPTIONAL and not getattr(args, OPTIONAL[name].lstrip("-")) and not args.only:
            print(f"\n== {name}: skipped (run with {OPTIONAL[name]})")
            continue
        if name in NEEDS_SERVICES and not services_up:
            print(f"\n== {name}: skipped (needs PostgreSQL at 127.0.0.1:5432 and Redis at "
                  "127.0.0.1:6379)")
            continue
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        try:
            result = subprocess.run([sys.executable, str(BENCH / f"{name}.py")], cwd=ROOT,
                                    timeout=args.timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            print(f"{name}: timed out after {args.timeout:.0f} s")
            failed.append(name)
            continue
        figures = [line for line in result.stdout.splitlines() if ": " in line]
        print("\n".join(figures) if figures else result.stdout.rstrip())
        print(f"{name}_wall_time: {time.monotonic() - started:.0f} s")
        if result.returncode != 0:
            print(f"{name}: FAILED (exit {result.returncode})\n{result.stderr[-2000:]}")
            failed.append(name)
    if failed:
        print(f"\nrun_all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
