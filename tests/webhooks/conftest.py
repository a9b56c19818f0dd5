"""The webhook tests run in the tenant API's world: the same tenants, keys and settings."""

from tests.api.conftest import (  # noqa: F401  (fixtures are found by name)
    _api_settings,
    api_a,
    api_b,
    cluster,
    key_a,
    key_b,
    listing,
    operator,
    tenant_a,
    tenant_b,
    world_a,
)
