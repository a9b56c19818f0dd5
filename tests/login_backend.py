"""The test settings' lockout backend: django-axes', except for request-less logins.

django-axes refuses `authenticate()` without a request, which is what the test client's
`login()` calls. A login without a request is not an HTTP login attempt (nothing to count, no
address to count it against), so here it skips the lockout check; every HTTP login, through
the admin form included, goes through axes exactly as in production.
"""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
