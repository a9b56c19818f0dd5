"""The tenant API: `/api/v1/...`, the OpenAPI document and Swagger UI (local static files)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from leasing.api.schema import SPECTACULAR_OVERRIDES

urlpatterns = [
    path("v1/", include("leasing.api.urls")),
    path("v1/", include("billing.api.urls")),
    path(
        "schema/",
        SpectacularAPIView.as_view(custom_settings=SPECTACULAR_OVERRIDES),
        name="api-schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
