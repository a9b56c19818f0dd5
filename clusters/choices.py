"""Enumerations of the inventory."""

from django.db import models


class Generation(models.TextChoices):
    VOLTA = "volta", "Volta"
    AMPERE = "ampere", "Ampere"
    HOPPER = "hopper", "Hopper"
    BLACKWELL = "blackwell", "Blackwell"


class NodeStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"
    MAINTENANCE = "maintenance", "Maintenance"


class CalibrationSource(models.TextChoices):
    NCCL_TESTS = "nccl_tests", "nccl-tests all_reduce_perf"
    HARNESS = "harness", "All-reduce harness (CSV)"


# --- The fleet under a lease (docs/rules/fleet.md) ------------------------------------------


class IncidentCategory(models.TextChoices):
    GPU = "gpu", "GPU"
    NVLINK = "nvlink", "NVLink"
    NETWORK = "network", "Network"
    POWER = "power", "Power"
    PERFORMANCE = "performance", "Performance"
    SILENT_DATA_CORRUPTION = "sdc", "Silent data corruption"
    OTHER = "other", "Other"


class IncidentSource(models.TextChoices):
    TENANT = "tenant", "Tenant (API)"
    OPERATOR = "operator", "Operator"
    MONITORING = "monitoring", "Monitoring"
    ACCEPTANCE = "acceptance", "Acceptance test"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Severity(models.TextChoices):
    """How bad a node is: drives its status while an incident or health event says so."""

    OK = "ok", "OK"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class MaintenanceScope(models.TextChoices):
    NODES = "nodes", "Chosen nodes"
    CLUSTER = "cluster", "Cluster"
    SITE = "site", "Campus"


class MaintenanceKind(models.TextChoices):
    PLANNED = "planned", "Planned"
    EMERGENCY = "emergency", "Emergency"


class MaintenanceCategory(models.TextChoices):
    FIRMWARE = "firmware", "Firmware and drivers"
    HARDWARE = "hardware", "Hardware"
    NETWORK = "network", "Network"
    POWER = "power", "Power"
    COOLING = "cooling", "Cooling"
    FACILITY = "facility", "Facility"
    OTHER = "other", "Other"


class MaintenanceStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"
