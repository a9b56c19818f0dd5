"""The tenant REST API (`/api/v1/`): API-key authentication, tenant-scoped views."""
