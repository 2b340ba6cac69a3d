"""Validation errors as one short line per problem: path, what was wrong, what is accepted."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskorch.problems import Problem, describe_problems, field_path, problems_of


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    depends_on: list[str] = []


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: Colour = Colour.RED
    mode: Literal["fast", "slow"] = "fast"
    count: int = 0
    key: int | str = 0
    items: list[Inner] | None = None


def problems(data: dict[str, Any], **options: Any) -> list[Problem]:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate(data)
    return problems_of(caught.value, **options)


def lines(data: dict[str, Any], **options: Any) -> list[str]:
    return [str(problem) for problem in problems(data, **options)]


def test_a_path_uses_dots_for_fields_and_brackets_for_positions() -> None:
    assert field_path(("steps", 1, "depends_on", 0)) == "steps[1].depends_on[0]"
    assert field_path(()) == ""


def test_a_missing_field_is_required_and_values_are_listed_for_enums_and_literals() -> None:
    assert lines({"items": [{}], "colour": "green", "mode": "medium"}) == [
        "colour: must be 'red' or 'blue', got 'green'",
        "mode: must be 'fast' or 'slow', got 'medium'",
        "items[0].name: required",
    ]


def test_a_number_that_does_not_parse_says_what_is_expected_without_pydantic_detail() -> None:
    assert lines({"count": "many"}) == ["count: must be a valid integer, got 'many'"]


def test_a_union_is_one_line_for_its_field_without_the_members_in_the_path() -> None:
    assert lines({"key": [1]}) == ["key: must be a valid integer or must be a valid string"]


def test_long_text_and_structures_are_not_echoed() -> None:
    assert lines({"items": [{"name": ""}], "count": "x" * 61}) == [
        "count: must be a valid integer",
        "items[0].name: must have at least 1 character, got ''",
    ]


def test_an_unknown_field_names_the_closest_accepted_one_when_the_schema_is_given() -> None:
    schema = Outer.model_json_schema()
    assert lines({"items": [{"name": "a", "depend_on": []}], "colur": "red"}, schema=schema) == [
        "items[0].depend_on: unknown field; did you mean 'depends_on'? Accepted: name, depends_on.",
        "colur: unknown field; did you mean 'colour'? Accepted: colour, mode, count, key, items.",
    ]
    assert lines({"zzz": 1}, schema=schema, noun="argument") == [
        "zzz: unknown argument. Accepted: colour, mode, count, key, items."
    ]
    assert lines({"zzz": 1}) == ["zzz: unknown field"]


def test_no_line_carries_pydantic_class_names_links_or_internal_types() -> None:
    text = describe_problems(problems({"items": [{"x": 1}], "count": "x", "colour": 5}))
    for noise in ("Outer", "Inner", "errors.pydantic.dev", "[type=", "input_value", "validation error"):
        assert noise not in text
    assert text.splitlines()[0] == "invalid arguments:"
    assert all(line.startswith("- ") for line in text.splitlines()[1:])


def test_one_problem_is_just_its_line() -> None:
    assert describe_problems([Problem("count", "required")]) == "count: required"
    assert describe_problems([Problem("", "must be an object")]) == "must be an object"
