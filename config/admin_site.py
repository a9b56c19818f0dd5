"""The operator admin site: Django's, plus a second factor where `OTP_REQUIRED` (production).

With `OTP_REQUIRED` the login form asks for a one-time code (django-otp's admin form: TOTP, or
a static code from `manage.py addstatictoken`), and a session counts as staff only once one of
the user's devices has verified it, for the admin and for the operator pages alike (they ask
`admin.site.has_permission`). Without it (development, the demo) the login is Django's and
TOTP devices can still be added in the admin. Settings are read per request, so a test can
switch the requirement on.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class OperatorAdminSite(AdminSite):
    # The model list beside every page took a fifth of a 1440 px screen from the changelists'
    # columns; the index page and the header's search box lead to every model instead.
    enable_nav_sidebar = False

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if settings.OTP_REQUIRED else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.OTP_REQUIRED else None

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        # django-otp's middleware gives the user `is_verified`; without it nobody is verified.
        verified = getattr(request.user, "is_verified", None)
        return not settings.OTP_REQUIRED or (verified is not None and bool(verified()))
