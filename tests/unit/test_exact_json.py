"""Exact JSON numbers and the Decimal-aware body validation."""

import datetime
import decimal

import pytest
from sqlalchemy.sql.elements import quoted_name

from service_kit import exact_json
from service_kit.http.request_validation import ExactDraft4RequestValidator

PRICE = {"type": "number", "minimum": 0, "maximum": 99999999.99, "multipleOf": 0.01}


def test_numbers_round_trip_exactly():
    value = exact_json.loads('{"price": 0.07, "qty": 3}')
    assert value == {"price": decimal.Decimal("0.07"), "qty": 3}
    assert exact_json.dumps({"total": value["price"] * 3}) == '{"total":0.21}'


def test_datetimes_are_utc_rfc3339():
    moment = datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)
    assert exact_json.dumps({"at": moment}) == '{"at":"2026-11-21T10:00:00Z"}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (decimal.Decimal("1500.00"), "1500.00"),
        (decimal.Decimal("1E+3"), "1E+3"),
        (2**70, "1180591620717411303424"),  # beyond orjson's 64 bits: the fallback writes it
        ("añ€", '"añ€"'),
    ],
)
def test_numbers_and_text_are_written_as_they_are(value, text):
    assert exact_json.dumps({"v": value}) == f'{{"v":{text}}}'


def test_a_decimal_with_no_number_is_not_written():
    with pytest.raises(ValueError):
        exact_json.dumps({"v": decimal.Decimal("NaN")})


@pytest.mark.parametrize(
    "text", ['{"a": NaN}', '{"a": Infinity}', '{"a": "\\udc00"}', "{", "[" * 100_000]
)
def test_unusable_json_is_rejected(text):
    with pytest.raises(ValueError):
        exact_json.loads(text)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("0.07", True),
        ("0.29", True),
        ("99999999.99", True),
        ("1500", True),
        ("0.001", False),
        ("100000000", False),
        ("1E+999999", False),
        ("-0.01", False),
    ],
)
def test_money_bounds_and_cents_are_checked_in_decimal(text, valid):
    validator = ExactDraft4RequestValidator(PRICE)
    assert validator.is_valid(exact_json.loads(text)) is valid


def test_row_keys_take_the_fast_writer(monkeypatch):
    # SQLAlchemy's row keys are str subclasses; only 64-bit overflows need the fallback.
    monkeypatch.setattr(exact_json.simplejson, "dumps", None)  # any use of it would fail
    row = {quoted_name("price", None): decimal.Decimal("1.50"), quoted_name("id", None): 7}
    assert exact_json.dumps(row) == '{"price":1.50,"id":7}'
