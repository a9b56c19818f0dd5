"""The admin app with the project's admin site as `admin.site` (see `config.admin_site`)."""

from django.contrib.admin.apps import AdminConfig


class OperatorAdminConfig(AdminConfig):
    default_site = "config.admin_site.OperatorAdminSite"
