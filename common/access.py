"""Who may open an operator page: staff status is not enough, each page names its permissions.

Roles are Django groups of model permissions (docs/rules/roles.md): a page declares what it
reads, and a POST also what it writes. Refusals follow the admin's own rules: an anonymous or
non-staff visitor (or, where a second factor is required, an unverified one) is sent to the
admin login; a staff user without a permission gets 403.

`client_ip` tells django-axes which address a login attempt came from (lockouts are per
username and address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

View = Callable[..., HttpResponse]


def operator_page(*read: str, write: Iterable[str] = ()) -> Callable[[View], View]:
    """Decorate an operator view: the admin site's own access test (active staff, verified
    where a second factor is required), then every permission in `read`, and for a POST also
    every permission in `write`.

    The declared permissions are kept on the view as `operator_permissions` ({"GET": ...,
    "POST": ...}); `functools.wraps` carries them through the admin's `admin_view` and the
    HTTP-method decorators, so a test can walk every operator URL and check each one."""
    on_post = (*read, *write)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not admin.site.has_permission(request):
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            safe = request.method in ("GET", "HEAD", "OPTIONS")
            if not request.user.has_perms(read if safe else on_post):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.operator_permissions = {"GET": read, "POST": on_post}  # type: ignore[attr-defined]
        return wrapped

    return decorate


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for counting failed logins (django-axes).

    With `TRUSTED_PROXY_COUNT` = N > 0 the N-th address from the right of X-Forwarded-For (each
    trusted proxy appends the address it was reached from; what stands further left is the
    client's to forge). Anything missing or malformed falls back to REMOTE_ADDR, which cannot
    be forged."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote
