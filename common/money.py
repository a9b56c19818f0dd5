"""Money: `Decimal` end to end, rounded in one place with a named mode.

`Decimal.quantize()` without `rounding=` rounds half-even ($12.005 → $12.00); the billing rule is
half-up ($12.01). Every rounding of money goes through `round_money`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MONEY_ROUNDING = ROUND_HALF_UP
DEFAULT_CURRENCY = "USD"
# Column shape for money: up to 10^16 dollars to the cent covers any lease here many times over.
MONEY_MAX_DIGITS = 18
MONEY_DECIMAL_PLACES = 2


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Convert an exact value to Decimal; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return value if isinstance(value, Decimal) else Decimal(value)


def round_money(value: Decimal | int | str) -> Decimal:
    """Round to the cent, half-up (the decided rule)."""
    return to_decimal(value).quantize(CENT, rounding=MONEY_ROUNDING)


def format_money(value: Decimal, currency: str = DEFAULT_CURRENCY) -> str:
    """Human form for operator pages: `$1,250,000,000.00`, `-$12.50` (USD), `1,250.00 EUR`."""
    rounded = round_money(value)
    sign = "-" if rounded < 0 else ""
    amount = f"{abs(rounded):,.2f}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"
