"""The tenant API's webhook endpoints: `/api/v1/webhook-endpoints/`."""
