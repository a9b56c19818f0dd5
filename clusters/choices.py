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
