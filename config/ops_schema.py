"""The operator API (`/api/ops/v1/`): its routes, from the apps that serve them, and the URLs
its own OpenAPI document describes (`/api/ops/schema/`). The tenant document leaves them out
(`exclude_ops_paths`)."""

from django.urls import include, path

OPS_PREFIX = "/api/ops/"

ops_v1 = [
    path("", include("clusters.api.urls")),
    path("", include("billing.ops_api.urls")),
]

urlpatterns = [path("api/ops/v1/", include(ops_v1))]


def exclude_ops_paths(endpoints, **kwargs):
    """drf-spectacular preprocessing hook of the tenant document: no operator path in it."""
    return [e for e in endpoints if not e[0].startswith(OPS_PREFIX)]
