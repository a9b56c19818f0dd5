"""Top-level URLs: the admin and operator pages (operators), the tenant API and its schema."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Landlord operator"
admin.site.site_title = "Landlord"
admin.site.index_title = "Fleet, leases and money"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("operator/billing/", include("billing.urls")),
    path("operator/", include("config.operator_urls")),
    path("api/", include("config.api_urls")),
]
