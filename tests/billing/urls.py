"""URLs for billing page tests: the admin plus billing's pages where the project mounts them."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("operator/billing/", include("billing.urls")),
]
