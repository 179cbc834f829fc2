"""Settings of bench/api.py's server: the project's, plus one trivial endpoint (urls below)
that the benchmark measures beside the real ones, through the same stack and auth."""

from cms.settings import *  # noqa: F403

ROOT_URLCONF = "bench.trivial_urls"
# The trivial endpoint is served like the API (the lean chain for token calls), so that
# the ratios compare endpoints, not middleware chains.
API_PATH_PREFIXES = (*API_PATH_PREFIXES, "/bench/")  # noqa: F405
