"""Tenants, the marketplace, leases, allocations, notices and reclaim decisions."""
