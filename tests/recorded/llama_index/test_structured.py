"""Structured output by each method: a forced tool call and ``response_format`` json_schema."""

from __future__ import annotations

import pytest
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel, Field

from .conftest import MakeLLM


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="The city's name")
    country: str = Field(description="The country the city is in")


PROMPT = PromptTemplate("Extract the city: {text}")
TEXT = "Paris, France."
METHODS = ["function_calling", "json_schema"]


@pytest.mark.parametrize("method", METHODS)
def test_structured_predict(llm: MakeLLM, method: str) -> None:
    result = llm(max_tokens=60, structured_output_method=method).structured_predict(
        City, PROMPT, text=TEXT
    )
    assert isinstance(result, City)
    assert result.name
    assert result.country


@pytest.mark.parametrize("method", METHODS)
async def test_astructured_predict(llm: MakeLLM, method: str) -> None:
    result = await llm(max_tokens=60).astructured_predict(
        City, PROMPT, llm_kwargs={"structured_output_method": method}, text=TEXT
    )
    assert isinstance(result, City)


@pytest.mark.parametrize("method", METHODS)
def test_stream_structured_predict(llm: MakeLLM, method: str) -> None:
    model = llm(max_tokens=60, structured_output_method=method)
    partials = list(model.stream_structured_predict(City, PROMPT, text=TEXT))
    assert len(partials) > 1, "the object grows as the JSON streams in"
    final = partials[-1]
    assert isinstance(final, City)
    assert final.name


def test_json_schema_strict(llm: MakeLLM) -> None:
    model = llm(max_tokens=60, structured_output_method="json_schema", strict=True)
    assert isinstance(model.structured_predict(City, PROMPT, text=TEXT), City)


def test_as_structured_llm(llm: MakeLLM) -> None:
    from llama_index.core.llms import ChatMessage

    structured = llm(max_tokens=60).as_structured_llm(City)
    response = structured.chat([ChatMessage(role="user", content=f"Extract the city: {TEXT}")])
    assert isinstance(response.raw, City)
    assert City.model_validate_json(response.message.content or "") == response.raw
