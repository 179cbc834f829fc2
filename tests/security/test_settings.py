"""Production defaults (cms/settings.py): DEBUG off unless asked, a secret key required
outside DEBUG, HTTPS settings on by default and driven by the environment, `check --deploy`
clean, CSP from django-csp, password validators on.

Settings are read in a fresh process with a chosen environment (the suite's own settings,
tests/settings.py, turn HTTPS off for the test client and supply a test key).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_KEY = "production-like-" + "k3y" * 20
NAMES = ["DEBUG", "SECRET_KEY", "TESSERA_HTTPS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "CSRF_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
         "SECURE_REDIRECT_EXEMPT", "CONTENT_SECURITY_POLICY", "X_FRAME_OPTIONS"]


def clean_environment(**variables) -> dict[str, str]:
    """This machine's environment without any Django/Tessera setting, plus `variables`."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "TESSERA_"))}
    return {**env, "DJANGO_SETTINGS_MODULE": "cms.settings", **variables}


def run_python(code: str, **variables) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env=clean_environment(**variables))


def load_settings(**variables) -> dict:
    result = run_python("import json, cms.settings as s; print(json.dumps("
                        f"{{n: getattr(s, n) for n in {NAMES!r}}}, default=str))", **variables)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_production_defaults_are_debug_off_and_https_everywhere():
    values = load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY)
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == PRODUCTION_KEY
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True and values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["X_FRAME_OPTIONS"] == "DENY"
    # Load balancers probe health over plain HTTP.
    assert values["SECURE_REDIRECT_EXEMPT"] == ["^healthz$", "^readyz$"]


def test_images_from_the_public_address_are_allowed_by_the_policy():
    """Previews show assembled content whose images are absolute on TESSERA_PUBLIC_BASE_URL,
    which may be another origin (a CDN): the policy allows that origin for images only."""
    values = load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY,
                           TESSERA_PUBLIC_BASE_URL="https://cdn.example.com/tessera/")
    directives = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["img-src"] == ["'self'", "data:", "https://cdn.example.com"]
    assert directives["default-src"] == ["'self'"] and directives["script-src"] == ["'self'"]


def test_each_https_setting_comes_from_the_environment():
    values = load_settings(
        DJANGO_SECRET_KEY=PRODUCTION_KEY, DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="600", DJANGO_SECURE_HSTS_PRELOAD="false",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme: https",
        DJANGO_COOKIE_SAMESITE="Strict", DJANGO_SESSION_COOKIE_SECURE="false")
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_SCHEME", "https"]
    assert values["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["CSRF_COOKIE_SECURE"] is True  # only what was asked changes
    assert load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY,
                         DJANGO_SECURE_PROXY_SSL_HEADER="")["SECURE_PROXY_SSL_HEADER"] is None


def test_tessera_https_false_turns_the_https_settings_off_together():
    values = load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY, TESSERA_HTTPS="false")
    assert values["DEBUG"] is False
    assert not values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_SECONDS"] == 0
    assert not values["SESSION_COOKIE_SECURE"] and not values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None


def test_development_debug_needs_no_key_and_no_https():
    values = load_settings(DJANGO_DEBUG="1")
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"]  # the development key from the code, DEBUG only
    assert values["TESSERA_HTTPS"] is False and values["SECURE_SSL_REDIRECT"] is False


@pytest.mark.parametrize("variables", [
    {}, {"DJANGO_SECRET_KEY": "   "}, {"DJANGO_DEBUG": "false"},
    {"DJANGO_SECRET_KEY": "embedded-profile-only-not-secret-change-me-in-production"},
], ids=["unset", "blank", "debug-false", "the-development-key"])
def test_settings_refuse_to_load_without_a_secret_key_outside_debug(variables):
    result = run_python("import cms.settings", **variables)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr


def test_check_deploy_passes_with_production_variables_at_warning_level():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env=clean_environment(DJANGO_SECRET_KEY=PRODUCTION_KEY,
                              DJANGO_ALLOWED_HOSTS="tessera.example.com"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in result.stdout


def test_ci_runs_the_same_deploy_check():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "manage.py check --deploy --fail-level WARNING" in ci


def test_the_content_security_policy_is_the_one_policy_string_as_django_csp_directives():
    values = load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY,
                           TESSERA_PUBLIC_BASE_URL="https://cms.example.com")
    assert values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"] == {
        "default-src": ["'self'"], "img-src": ["'self'", "data:", "https://cms.example.com"],
        "style-src": ["'self'", "'unsafe-inline'"], "script-src": ["'self'"],
        "frame-ancestors": ["'self'"], "object-src": ["'none'"], "base-uri": ["'self'"],
    }
    custom = load_settings(DJANGO_SECRET_KEY=PRODUCTION_KEY,
                           TESSERA_CSP="default-src 'none'; img-src https:")
    assert custom["CONTENT_SECURITY_POLICY"]["DIRECTIVES"] == {
        "default-src": ["'none'"], "img-src": ["https:"]}


@pytest.mark.django_db
def test_pages_carry_the_policy_nosniff_and_deny_framing(client):
    response = client.get("/review/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                      "frame-ancestors 'self'", "base-uri 'self'"):
        assert directive in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1", "password1234", "12345678901234"])
def test_password_validators_refuse_weak_passwords(password):
    user = get_user_model()(username="mira.keller", first_name="Mira", last_name="Keller")
    with pytest.raises(ValidationError):
        validate_password(password, user)


@pytest.mark.django_db
def test_password_validators_accept_a_long_unrelated_passphrase():
    user = get_user_model()(username="mira.keller", first_name="Mira", last_name="Keller")
    validate_password("correct horse battery staple", user)


@pytest.mark.django_db
def test_the_admin_password_form_applies_the_validators(admin_client):
    target = get_user_model().objects.create_user("jonas.weber", password="x" * 20)
    response = admin_client.post(f"/admin/auth/user/{target.pk}/password/",
                                 {"password1": "jonasweber1", "password2": "jonasweber1"})
    assert response.status_code == 200  # the form again, with the validators' errors
    assert b"too short" in response.content or b"too similar" in response.content
    target.refresh_from_db()
    assert not target.check_password("jonasweber1")


@pytest.mark.parametrize("variables,named", [
    ({"DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "DJANGO_SECURE_PROXY_SSL_HEADER"),
    ({"DJANGO_COOKIE_SAMESITE": "None"}, "DJANGO_COOKIE_SAMESITE"),
    ({"DJANGO_COOKIE_SAMESITE": "sometimes"}, "DJANGO_COOKIE_SAMESITE"),
])
def test_a_malformed_security_variable_stops_the_settings_naming_it(variables, named):
    result = run_python("import cms.settings", DJANGO_SECRET_KEY=PRODUCTION_KEY, **variables)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named} must" in result.stderr


@pytest.mark.django_db
def test_https_redirect_spares_the_health_probes_and_honours_the_proxy_header(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000  # SecurityMiddleware reads these when it starts
    page = client.get("/review/login/")
    assert page.status_code == 301 and page["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    behind_proxy = client.get("/review/login/", HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 200
    assert behind_proxy["Strict-Transport-Security"].startswith("max-age=31536000")
