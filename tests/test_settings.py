"""Settings: production passes the deploy check and refuses development defaults."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    unset = {"SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE", "DEBUG"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check_with_warnings_fatal():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="landlord.example",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def refused(**env: str) -> str:
    """What `manage.py check` printed when the settings refused to start (it must refuse)."""
    result = manage("check", **env)
    assert result.returncode != 0, result.stdout
    return result.stderr + result.stdout


def test_production_settings_refuse_the_development_key():
    printed = refused(
        DJANGO_SETTINGS_MODULE="config.settings.production", ALLOWED_HOSTS="landlord.example"
    )
    assert "SECRET_KEY" in printed


def test_time_is_never_naive():
    from django.conf import settings

    assert settings.USE_TZ is True
    assert settings.TIME_ZONE == "UTC"


def _redis_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


def test_cache_url_gives_every_process_one_redis_cache():
    """Per-key throttling counts once across workers only if they share the cache."""
    if not _redis_reachable():
        assert not os.environ.get("CI"), "CI starts Redis: it must be reachable here"
        import pytest

        pytest.skip("no Redis on 127.0.0.1:6379")
    marker = secrets.token_hex(8)
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "CACHE_URL": "redis://127.0.0.1:6379/6",
    }
    write = manage(
        "shell",
        "--no-imports",
        "-c",
        f"from django.core.cache import caches; caches['default'].set('settings-test', "
        f"'{marker}', 30); print(type(caches['default']).__name__)",
        **env,
    )
    assert write.returncode == 0, write.stderr
    assert write.stdout.strip() == "RedisCache"
    read = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.core.cache import cache; print(cache.get('settings-test'))",
        **env,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == marker  # another process sees the first one's entry


def test_cache_url_must_name_redis():
    printed = refused(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        CACHE_URL="memcached://cache-user:s3cret-word@cache.example:11211",
    )
    assert "CACHE_URL must be redis://" in printed
    assert "s3cret-word" not in printed  # a URL may carry a password


def test_the_test_settings_never_use_a_shared_cache():
    """The suite clears the cache before and after tests: with CACHE_URL set for a shared
    Redis, it must still use its own memory cache."""
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.core.cache import caches; print(type(caches['default']).__name__)",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CACHE_URL="redis://127.0.0.1:6379/6",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LocMemCache"


def test_the_login_lockout_is_configured_from_the_environment():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.TRUSTED_PROXY_COUNT)",
        DJANGO_SETTINGS_MODULE="config.settings.base",
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="60",
        TRUSTED_PROXY_COUNT="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 1:00:00 1"


def test_production_requires_a_second_factor_and_development_does_not():
    show = "from django.conf import settings as s; print(s.OTP_REQUIRED, s.DEBUG)"
    production = manage(
        "shell",
        "--no-imports",
        "-c",
        show,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="landlord.example",
        OTP_REQUIRED="0",  # not a switch production listens to
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip() == "True False"
    development = manage(
        "shell", "--no-imports", "-c", show, DJANGO_SETTINGS_MODULE="config.settings.base"
    )
    assert development.stdout.strip() == "False True"
