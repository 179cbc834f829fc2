"""Settings of bench/api.py's server: the project's, plus one trivial endpoint (urls below)
that the benchmark measures beside the real ones, through the same stack and auth."""

from cms.settings import *  # noqa: F403

ROOT_URLCONF = "bench.trivial_urls"
