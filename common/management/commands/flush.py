"""`flush`, which Django's test runner calls to empty every table between transactional tests.

With `settings.FLUSH_BYPASSES_TAMPER_GUARDS` (test settings only) it runs in maintenance, so
the tamper guards let it empty issued documents and number series; anywhere else it is
Django's own command, and the guards refuse to flush billing (common/tamper.py).
"""

from django.conf import settings
from django.core.management.commands import flush

from common.tamper import maintenance


class Command(flush.Command):
    def handle(self, **options):
        if not getattr(settings, "FLUSH_BYPASSES_TAMPER_GUARDS", False):
            return super().handle(**options)
        with maintenance(options["database"]):
            return super().handle(**options)
