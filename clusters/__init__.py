"""Inventory (campuses, links, clusters, nodes, GPU models) and the performance model."""
