"""The documents query language: parsing ``FIELD OP VALUE`` and matching documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfs_log import CID
from ipfs_log.codec import encode
from stores.documents_query import (
    OPERATORS,
    Condition,
    QuerySyntaxError,
    json_or_text,
    parse_condition,
    parse_query,
)
from stores.errors import StoreError

# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age>=30", ("age", ">=", 30)),
        ("city!=Paris", ("city", "!=", "Paris")),
        ("tags~db", ("tags", "~", "db")),
        ("name=", ("name", "=", "")),
        ('name="a=b"', ("name", "=", "a=b")),  # the first operator ends the field
        ("x<=y>=z", ("x", "<=", "y>=z")),
        ("n=1.5", ("n", "=", 1.5)),
        ("n='1'", ("n", "=", "'1'")),  # not JSON: plain text
        ("v=NaN", ("v", "=", "NaN")),  # NaN is no JSON value
        ('o={"a": [1, null]}', ("o", "=", {"a": [1, None]})),
    ],
)
def test_parse_condition(text: str, expected: tuple[str, str, Any]) -> None:
    c = parse_condition(text)
    assert (c.field, c.op, c.value) == expected


@pytest.mark.parametrize("text", ["nocondition", "", "=1", "~x", "!"])
def test_a_condition_needs_a_field_and_an_operator(text: str) -> None:
    with pytest.raises(QuerySyntaxError, match="a condition is FIELD=VALUE") as caught:
        parse_condition(text)
    assert caught.value.text == text
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value, ValueError)


def test_a_condition_is_checked_when_made() -> None:
    with pytest.raises(QuerySyntaxError):
        Condition("age", "≥", 3)
    with pytest.raises(QuerySyntaxError):
        Condition("", "=", 3)


def test_a_caller_brings_its_own_value_syntax() -> None:
    seen: list[str] = []

    def upper(text: str) -> Any:
        seen.append(text)
        return text.upper()

    query = parse_query(["a=x", "b!=y"], upper)
    assert seen == ["x", "y"]
    assert [(c.field, c.op, c.value) for c in query.conditions] == [("a", "=", "X"), ("b", "!=", "Y")]


def test_json_or_text() -> None:
    assert json_or_text("[1, 2]") == [1, 2]
    assert json_or_text("Infinity") == "Infinity"
    assert json_or_text("{bad") == "{bad"


# ---------------------------------------------------------------------- matching

PEOPLE = [
    {"_id": "ada", "city": "London", "born": 1815, "tags": ["maths", "engines"]},
    {"_id": "alan", "city": "London", "born": 1912, "tags": ["maths", "machines"], "alive": False},
    {"_id": "kurt", "city": "Vienna", "born": 1906.5, "tags": "logic"},
]


@pytest.mark.parametrize(
    ("conditions", "ids"),
    [
        (["born>1900"], ["alan", "kurt"]),  # an int and a float compare
        (["born<=1815"], ["ada"]),
        (["city!=London"], ["kurt"]),
        (["city~ndo"], ["ada", "alan"]),
        (["tags~maths"], ["ada", "alan"]),  # a list member
        (["tags~ogi"], ["kurt"]),  # a substring
        (["alive!=true"], ["ada", "alan", "kurt"]),  # a missing field matches only !=
        (["alive=false"], ["alan"]),
        (["alive<1"], []),  # booleans are not numbers
        (["city>1"], []),  # a string and a number do not compare
        (["born=1906"], []),  # 1906.5 is not 1906
        (['tags=["maths", "engines"]'], ["ada"]),  # whole lists compare
        (["city=London", "born>1900"], ["alan"]),  # every condition must hold
        (["city>=M"], ["kurt"]),  # strings compare as strings
    ],
)
def test_matching(conditions: list[str], ids: list[str]) -> None:
    query = parse_query(conditions)
    assert [d["_id"] for d in PEOPLE if query(d)] == ids


def test_a_value_that_is_no_ipld_value_equals_nothing() -> None:
    odd = {"x": float("nan")}  # not in a stored document, but a predicate must not raise on it
    assert not Condition("x", "=", 1).matches(odd)
    assert not Condition("x", "~", 1).matches({"x": [float("nan")]})


def test_bytes_and_links_compare_as_ipld_values() -> None:
    cid = CID.for_block(encode({"a": 1}))
    assert Condition("b", "=", b"\x01").matches({"b": b"\x01"})
    assert Condition("l", "~", cid).matches({"l": [cid]})
    assert str(Condition("b", "=", b"\x01")) == "b=b'\\x01'"


# ---------------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)  # what DAG-CBOR encodes
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)
fields = st.text(min_size=1).filter(lambda f: not any(c in f for c in "!<>=~"))


@given(fields, st.sampled_from(OPERATORS), json_values)
def test_text_parses_back_to_the_same_condition(field: str, op: str, value: Any) -> None:
    condition = Condition(field, op, value)
    again = parse_condition(str(condition))
    assert (again.field, again.op) == (field, op)
    assert json.dumps(again.value) == json.dumps(value)  # the same value and type (1 is not 1.0 or True)


@given(fields, json_values, st.dictionaries(st.text(max_size=3), json_values, max_size=3))
def test_not_equal_is_the_negation_of_equal(field: str, value: Any, doc: dict[str, Any]) -> None:
    for present in (doc, {**doc, field: value}):
        assert Condition(field, "!=", value).matches(present) != Condition(field, "=", value).matches(present)
