"""The URLs the operator ingestion API's own OpenAPI document describes (`/api/ops/schema/`):
only `/api/ops/v1/...`. The tenant document leaves them out (`exclude_ops_paths`)."""

from django.urls import include, path

OPS_PREFIX = "/api/ops/"

urlpatterns = [path("api/ops/v1/", include("clusters.api.urls"))]


def exclude_ops_paths(endpoints, **kwargs):
    """drf-spectacular preprocessing hook of the tenant document: no operator path in it."""
    return [e for e in endpoints if not e[0].startswith(OPS_PREFIX)]
