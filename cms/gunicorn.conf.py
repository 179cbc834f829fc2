"""gunicorn settings for Tessera's web processes, all from environment variables.

    gunicorn -c cms/gunicorn.conf.py cms.wsgi      (what `make serve` / cms.serve run)

WEB_CONCURRENCY     worker processes (default 2)
GUNICORN_THREADS    threads per worker (default 1: sync workers; >1 switches to gthread)

2 sync workers were chosen by measurement on the 2-core machine (bench/api.py --servers,
docs/operations.md "Serving stack"): alternating runs at load average ~5 gave the same
rate as 2 gthread workers x 4 or 8 threads and a p99 of ~96 ms against 440-530 ms;
gthread only won (on rate) when the machine was saturated (load average ~10).
HOST, PORT          where to listen (default 127.0.0.1:8000); GUNICORN_BIND overrides both
GUNICORN_TIMEOUT    seconds before a stuck worker is killed and replaced (default 30)
GUNICORN_MAX_REQUESTS  recycle a worker after this many requests (default 5000; 0 = never)
"""

import os

# Logs are JSON lines under gunicorn unless the operator asked otherwise. Set before the
# application (and its settings) load in the workers.
os.environ.setdefault("TESSERA_LOG_FORMAT", "json")

bind = os.environ.get("GUNICORN_BIND") or (
    f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# Heartbeat files in memory, not on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The app logs one line per request itself (cms.logging.RequestLogMiddleware), with the
# request id; gunicorn's access log would only repeat it without the id.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("TESSERA_LOG_LEVEL", "info").lower()
# Trust X-Forwarded-* only from the load balancer in front (comma-separated addresses).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

if os.environ["TESSERA_LOG_FORMAT"].lower() == "json":
    # gunicorn's own lines (boot, worker timeouts) in the same JSON shape as the app's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cms.logging.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(),
                               "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
        "root": {"handlers": [], "level": "WARNING"},
    }

# gunicorn ≥ 24 opens a control socket in $HOME shared by every instance on the machine;
# Tessera does not use it, and two deployments (or a bench beside a server) would collide.
control_socket_disable = True


def post_worker_init(worker):
    """Once the worker has imported the application, move everything it holds (Django, the
    URLconf, settings, every module) out of the garbage collector's reach: collections then
    scan only what requests create, so a full collection cannot stall a request for the
    time it takes to traverse the whole application (bench/_profile_api.py --gc freeze;
    docs/performance.md, REST path round 3)."""
    import gc

    gc.freeze()
