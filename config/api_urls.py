"""The tenant API: `/api/v1/...`, the OpenAPI document and Swagger UI (local static files).

Anything else under `/api/` answers the API's JSON 404 (not Django's HTML page), so a client
that mistypes a path or an id gets the same error format as everywhere else.
"""

from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.ops_schema import ops_v1


@csrf_exempt  # no session, no cookies: a JSON 404 for every method
def api_not_found(request, rest: str = ""):
    return JsonResponse({"detail": "Not found.", "code": "not_found", "extra": {}}, status=404)


urlpatterns = [
    path("v1/", include("leasing.api.urls")),
    path("v1/", include("leasing.api.acceptance")),
    path("v1/", include("billing.api.urls")),
    path("v1/", include("webhooks.api.urls")),
    path("v1/", include("leasing.api.incidents")),
    path("v1/", include("leasing.api.maintenance")),
    # Enum names for the schema are in settings (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # The operator API (monitoring source keys and operator keys, never tenant keys) and its
    # own document.
    path("ops/v1/", include(ops_v1)),
    path(
        "ops/schema/",
        SpectacularAPIView.as_view(
            urlconf="config.ops_schema",
            custom_settings={
                "TITLE": "Landlord operator API",
                "DESCRIPTION": "Monitoring systems push health events; a finance system "
                "records, reverses and refunds payments (docs/api.md).",
                "PREPROCESSING_HOOKS": [],
            },
        ),
        name="ops-api-schema",
    ),
    re_path(r"^(?P<rest>[\s\S]*)\Z", api_not_found),
]
