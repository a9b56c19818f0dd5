"""`{% load money %}` then `{{ amount|money }}` or `{{ amount|money:"EUR" }}`: Decimal money
rounded half-up to the cent with its currency, empty for None."""

from decimal import Decimal

from django import template

from common.money import DEFAULT_CURRENCY, format_money

register = template.Library()


@register.filter(name="money")
def money(value: Decimal | int | str | None, currency: str = DEFAULT_CURRENCY) -> str:
    if value is None or value == "":
        return ""
    return format_money(Decimal(value), currency)
