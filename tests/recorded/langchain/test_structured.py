"""``with_structured_output`` by each method, against a server that really constrains output."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from .conftest import MakeChat


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="The city's name")
    country: str = Field(description="The country the city is in")


class CityDict(TypedDict):
    """A city and the country it is in."""

    name: str
    country: str


QUESTION = "Extract the city: Paris, France."
JSON_QUESTION = (
    "Paris is a city in France. Reply with only a JSON object with the keys 'name' and 'country'."
)


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_pydantic_schema(chat: MakeChat, method: str) -> None:
    result = chat(max_tokens=60).with_structured_output(City, method=method).invoke(QUESTION)
    assert isinstance(result, City)
    assert result.name
    assert result.country


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
async def test_typeddict_schema_async(chat: MakeChat, method: str) -> None:
    llm = chat(max_tokens=60).with_structured_output(CityDict, method=method)
    result = await llm.ainvoke(QUESTION)
    assert isinstance(result, dict)
    assert set(result) == {"name", "country"}
    assert all(isinstance(v, str) for v in result.values())


def test_json_schema_strict(chat: MakeChat) -> None:
    llm = chat(max_tokens=60).with_structured_output(City, method="json_schema", strict=True)
    assert isinstance(llm.invoke(QUESTION), City)


def test_json_mode(chat: MakeChat) -> None:
    result = (
        chat(max_tokens=60).with_structured_output(City, method="json_mode").invoke(JSON_QUESTION)
    )
    assert isinstance(result, City)


def test_json_mode_without_schema(chat: MakeChat) -> None:
    result = chat(max_tokens=60).with_structured_output(method="json_mode").invoke(JSON_QUESTION)
    assert isinstance(result, dict)
    assert result


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_stream_structured_output(chat: MakeChat, method: str) -> None:
    llm = chat(max_tokens=60).with_structured_output(City.model_json_schema(), method=method)
    parsed: list[dict[str, Any]] = list(llm.stream(QUESTION))
    assert parsed, "the parser yields as the JSON grows"
    assert set(parsed[-1]) == {"name", "country"}


def test_include_raw(chat: MakeChat) -> None:
    llm = chat(max_tokens=60).with_structured_output(City, include_raw=True)
    out = llm.invoke(QUESTION)
    assert out["parsing_error"] is None
    assert isinstance(out["parsed"], City)
    assert out["raw"].tool_calls[0]["name"] == "City"
