"""Model fields shared by the apps."""

from typing import Any

from django.conf import settings
from django.db import models

from .money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def money_field(**kwargs: Any) -> models.DecimalField:
    """A money column: Decimal to the cent, never float."""
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


def actor_field(**kwargs: Any) -> models.ForeignKey:
    """Who did it: the staff or tenant user behind a write, kept when the user is deleted.

    Null when the system acted (a job, a seed, a command run without a user). Reverse accessors
    are off: nobody asks a user for everything they ever touched through the ORM.
    """
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        **kwargs,
    )
