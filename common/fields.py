"""Model fields shared by the apps."""

from typing import Any

from django.db import models

from .money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def money_field(**kwargs: Any) -> models.DecimalField:
    """A money column: Decimal to the cent, never float."""
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )
