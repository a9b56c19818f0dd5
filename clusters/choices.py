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
