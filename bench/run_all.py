"""Run every benchmark in bench/ and print their figures (what `make bench` runs).

    .venv/bin/python bench/run_all.py [--soak] [--only NAME[,NAME]] [--timeout 1200]

Runs each `bench/*.py` present (assembly, api, scale, ...) in its own process, one after the
other, and prints its `name: value unit` lines under a header. The soak test
(`bench/soak.py`) runs only with --soak. Benchmarks that need the local PostgreSQL (and
Redis) are skipped, with the reason, when those do not answer. `api` and `modlist` run in
both profiles: on SQLite, then on PostgreSQL (`--postgres`; api.py then uses the services
profile's Redis cache) when PostgreSQL answers; each profile's figures are prefixed
`sqlite_` / `postgres_`.
Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _postgres import answers

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NOT_BENCHMARKS = {"run_all", "trivial_settings", "trivial_urls"}  # (api.py's server's)
OPTIONAL = {"soak": "--soak"}
POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
PG_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# What each benchmark needs running locally (the others need nothing).
NEEDS = {
    "scale": (POSTGRES, REDIS), "soak": (POSTGRES, REDIS),
    "orchestration": (POSTGRES,), "analytics": (POSTGRES,),
    "copy_threshold": (POSTGRES,), "epoch_push": (POSTGRES,),
    "analytics_sections": (POSTGRES,),
}
# Benchmarks run more than once: (label, extra arguments, services needed); the label
# prefixes that run's figure names.
BOTH_PROFILES = [("sqlite", [], ()), ("postgres", ["--postgres", PG_SERVER], (POSTGRES,))]
PROFILES = {"api": BOTH_PROFILES, "modlist": BOTH_PROFILES}


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
    up = {service: answers(*service) for service in (POSTGRES, REDIS)}

    def missing(needs) -> str:
        labels = {POSTGRES: "PostgreSQL at 127.0.0.1:5432", REDIS: "Redis at 127.0.0.1:6379"}
        return " and ".join(labels[s] for s in needs if not up[s])

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    failed = []
    for name in names:
        if name in OPTIONAL and not getattr(args, OPTIONAL[name].lstrip("-")) and not args.only:
            print(f"\n== {name}: skipped (run with {OPTIONAL[name]})")
            continue
        for label, extra, needs in PROFILES.get(name, [("", [], ())]):
            title = f"{name} ({label})" if label else name
            absent = missing(NEEDS.get(name, ()) + needs)
            if absent:
                print(f"\n== {title}: skipped (needs {absent})")
                continue
            if not run_one(name, extra, label, title, args.timeout):
                failed.append(title)
    if failed:
        print(f"\nrun_all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def run_one(name: str, extra: list[str], label: str, title: str, timeout: float) -> bool:
    """Run bench/<name>.py with `extra` arguments and print its figures (names prefixed
    with `label`_ when given); False if it failed."""
    print(f"\n== {title}", flush=True)
    prefix = f"{label}_" if label else ""
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *extra], cwd=ROOT,
                                timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"{prefix}{name}: timed out after {timeout:.0f} s")
        return False
    figures = [prefix + line for line in result.stdout.splitlines() if ": " in line]
    print("\n".join(figures) if figures else result.stdout.rstrip())
    print(f"{prefix}{name}_wall_time: {time.monotonic() - started:.0f} s")
    if result.returncode != 0:
        print(f"{title}: FAILED (exit {result.returncode})\n{result.stderr[-2000:]}")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
