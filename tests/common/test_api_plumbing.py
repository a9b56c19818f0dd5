"""Strict fields, the error format and bounded pagination."""

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated, ParseError, Throttled, ValidationError
from rest_framework.renderers import JSONRenderer

from common.api.exceptions import api_exception_handler
from common.api.fields import (
    AwareDateTimeField,
    StrictCharField,
    StrictDateField,
    StrictIntegerField,
    StrictURLField,
)
from common.api.serializers import StrictInputSerializer
from common.exceptions import DomainError


class Sample(StrictInputSerializer):
    count = StrictIntegerField(min_value=1, max_value=10_000)
    day = StrictDateField(required=False)
    at = AwareDateTimeField(required=False)


def errors(data) -> dict:
    s = Sample(data=data)
    assert not s.is_valid()
    return s.errors


def test_valid_input_passes():
    s = Sample(data={"count": 8, "day": "2026-02-28", "at": "2026-01-01T05:00:00-06:00"})
    assert s.is_valid(), s.errors
    assert s.validated_data["count"] == 8
    assert s.validated_data["day"] == dt.date(2026, 2, 28)
    assert s.validated_data["at"] == dt.datetime(2026, 1, 1, 11, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "bad", ["٨", "８", True, 8.0, "8.5", "1e3", None, [], "", "0x10", "8", " 8"]
)
def test_integers_are_json_whole_numbers_only(bad):
    assert "count" in errors({"count": bad})


@pytest.mark.parametrize("bad", [0, -1, 10_001, 10**30])
def test_integer_bounds(bad):
    assert "count" in errors({"count": bad})


@pytest.mark.parametrize("bad", ["2026-1-01", "٢٠٢٦-٠١-٠١", "2026-02-30", "20260101", 20260101])
def test_dates_are_iso_ascii(bad):
    assert "day" in errors({"count": 1, "day": bad})


@pytest.mark.parametrize("bad", ["2026-01-01T00:00:00", "2026-01-01", "yesterday", 1767225600])
def test_naive_or_malformed_datetimes_are_refused(bad):
    assert "at" in errors({"count": 1, "at": bad})


def test_unknown_fields_are_named():
    assert errors({"count": 1, "requested_end": "2026-01-01"}) == {
        "requested_end": ["Unknown field."]
    }
    assert "non_field_errors" in errors(["count", 1])


@given(st.text(max_size=12))
def test_no_text_is_an_integer(text):
    """The schema says `integer`: a string of digits is not one."""
    assert "count" in errors({"count": text})


class Text(StrictInputSerializer):
    note = StrictCharField(required=False, max_length=10)
    url = StrictURLField(required=False)


@pytest.mark.parametrize(
    "data", [{"note": 0}, {"note": 1.5}, {"note": True}, {"note": ["x"]}, {"url": 1}]
)
def test_text_must_be_a_json_string(data):
    s = Text(data=data)
    assert not s.is_valid()
    assert set(s.errors) == set(data)


def test_text_is_kept_as_sent():
    s = Text(data={"note": " spaced ", "url": "https://example.com/x"})
    assert s.is_valid(), s.errors
    assert s.validated_data["note"] == " spaced "
    assert not Text(data={"url": " https://example.com/x"}).is_valid()


def test_error_format_for_domain_validation_auth_throttle_and_parse_errors():
    class Refused(DomainError):
        code = "notice_not_allowed"
        http_status = 409

    r = api_exception_handler(Refused("too late", extra={"latest": "2026-03-30"}), {})
    assert (r.status_code, r.data) == (
        409,
        {"detail": "too late", "code": "notice_not_allowed", "extra": {"latest": "2026-03-30"}},
    )
    r = api_exception_handler(ValidationError({"count": ["bad"]}), {})
    assert r.status_code == 400
    assert r.data["code"] == "validation_error"
    assert r.data["extra"]["fields"] == {"count": ["bad"]}
    r = api_exception_handler(NotAuthenticated(), {})
    assert (r.status_code, r.data["code"]) == (401, "not_authenticated")
    assert r["WWW-Authenticate"].startswith("Bearer")
    r = api_exception_handler(Throttled(wait=2.2), {})
    assert (r.status_code, r.data["code"], r["Retry-After"]) == (429, "throttled", "3")
    assert r.data["extra"]["retry_after_s"] == 3
    r = api_exception_handler(ParseError(), {})
    assert (r.status_code, r.data["code"]) == (400, "malformed_request")
    assert set(api_exception_handler(serializers.ValidationError("x"), {}).data) == {
        "detail",
        "code",
        "extra",
    }


@pytest.mark.parametrize(
    "exc",
    [
        ValidationError({"\ud800": ["Unknown field."]}),
        ValidationError({"kind": ['"\udfff" is not a valid choice.']}),
        DomainError("refused \ud800", extra={"value": ["\ud800"]}),
        ParseError("bad \ud83d"),
    ],
)
def test_error_bodies_encode_whatever_they_echo(exc):
    """One place makes every error body encodable: a lone surrogate (refused by UTF-8) is
    written as its escape."""
    response = api_exception_handler(exc, {})
    raw = JSONRenderer().render(response.data)
    text = raw.decode("utf-8")
    assert "\\\\u" in text  # the escape itself, as JSON text
    assert set(json.loads(text)) == {"detail", "code", "extra"}


def test_money_formats_with_sign_and_half_up_cents():
    from decimal import Decimal

    from common.money import format_money, round_money

    assert round_money(Decimal("12.005")) == Decimal("12.01"), "half-up, not half-even"
    assert format_money(Decimal("1250000000")) == "$1,250,000,000.00"
    assert format_money(Decimal("-12.505")) == "-$12.51"
    assert format_money(Decimal("7"), "EUR") == "7.00 EUR"
    with pytest.raises(TypeError):
        round_money(1.5)
