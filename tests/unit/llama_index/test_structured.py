"""Structured outputs: function calling by default, response_format json_schema on request."""

from __future__ import annotations

import json

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.program.function_program import get_function_tool
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

from runcrate_integrations import StructuredOutputError
from runcrate_integrations.chat.request import response_format_for
from tests.helpers import completion_body, sse, text_chunks, tool_call, tool_call_chunks

from .conftest import MODEL, MakeLLM


class Weather(BaseModel):
    """Weather in a city."""

    city: str
    celsius: float


PROMPT = PromptTemplate("Weather in {city}?")
USER = [{"role": "user", "content": "Weather in Paris?"}]
TOOL_SPEC = get_function_tool(Weather).metadata.to_openai_tool(skip_length_check=True)
ARGS = {"city": "Paris", "celsius": 21.5}
CALL_REPLY = completion_body(None, tool_calls=[tool_call("Weather", ARGS)])
FUNCTION_BODY = {
    "model": MODEL,
    "messages": USER,
    "tools": [TOOL_SPEC],
    "tool_choice": "required",
    "parallel_tool_calls": False,
}
SCHEMA_BODY = {"model": MODEL, "messages": USER, "response_format": response_format_for(Weather)}


# ---------------------------------------------------------------------------- function calling


def test_structured_predict_uses_a_forced_tool_call(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([CALL_REPLY])
    result = llm.structured_predict(Weather, PROMPT, city="Paris")
    assert rec.body == FUNCTION_BODY
    assert result == Weather(city="Paris", celsius=21.5)


async def test_astructured_predict_uses_a_forced_tool_call(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([CALL_REPLY])
    result = await llm.astructured_predict(Weather, PROMPT, city="Paris")
    assert rec.body == FUNCTION_BODY
    assert result == Weather(city="Paris", celsius=21.5)


STREAMED_CALL = tool_call_chunks("Weather", ['{"city": "Paris", ', '"celsius": 21.5}'])


def test_stream_structured_predict_function_calling(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([sse(STREAMED_CALL)])
    outputs = list(llm.stream_structured_predict(Weather, PROMPT, city="Paris"))
    assert rec.body["tools"] == [TOOL_SPEC] and rec.body["stream"] is True
    assert getattr(outputs[1], "city", None) == "Paris"  # a partial object, before celsius
    assert outputs[-1] == Weather(city="Paris", celsius=21.5)


async def test_astream_structured_predict_function_calling(make_llm: MakeLLM) -> None:
    llm, _ = make_llm([sse(STREAMED_CALL)])
    outputs = [o async for o in await llm.astream_structured_predict(Weather, PROMPT, city="Paris")]
    assert outputs[-1] == Weather(city="Paris", celsius=21.5)


def test_as_structured_llm(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([CALL_REPLY])
    structured = llm.as_structured_llm(Weather)
    response = structured.chat([ChatMessage(role="user", content="Weather in Paris?")])
    assert rec.body == FUNCTION_BODY
    assert json.loads(response.message.content or "") == ARGS
    assert response.raw == Weather(city="Paris", celsius=21.5)


# ---------------------------------------------------------------------------- json_schema


def test_structured_predict_json_schema_when_asked(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(json.dumps(ARGS))], structured_output_method="json_schema")
    result = llm.structured_predict(Weather, PROMPT, city="Paris")
    assert rec.body == SCHEMA_BODY
    assert result == Weather(city="Paris", celsius=21.5)


async def test_astructured_predict_json_schema_per_call(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(json.dumps(ARGS))], strict=True)
    result = await llm.astructured_predict(
        Weather, PROMPT, llm_kwargs={"structured_output_method": "json_schema"}, city="Paris"
    )
    assert rec.body == {**SCHEMA_BODY, "response_format": response_format_for(Weather, strict=True)}
    assert result == Weather(city="Paris", celsius=21.5)


def test_stream_structured_predict_json_schema(make_llm: MakeLLM) -> None:
    pieces = ['{"city": "Par', 'is", "celsius": 2', "1.5}"]
    llm, rec = make_llm([sse(text_chunks(pieces))], structured_output_method="json_schema")
    outputs = list(llm.stream_structured_predict(Weather, PROMPT, city="Paris"))
    assert rec.body == {**SCHEMA_BODY, "stream": True, "stream_options": {"include_usage": True}}
    assert outputs[-1] == Weather(city="Paris", celsius=21.5)


async def test_astream_structured_predict_json_schema(make_llm: MakeLLM) -> None:
    llm, _ = make_llm(
        [sse(text_chunks(['{"city": "Paris",', ' "celsius": 3}']))],
        structured_output_method="json_schema",
    )
    stream = await llm.astream_structured_predict(Weather, PROMPT, city="Paris")
    outputs = [o async for o in stream]
    assert outputs[-1] == Weather(city="Paris", celsius=3)


def test_as_structured_llm_json_schema(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(json.dumps(ARGS))], structured_output_method="json_schema")
    response = llm.as_structured_llm(Weather).complete("Weather in Paris?")
    assert rec.body == SCHEMA_BODY
    assert json.loads(response.text) == ARGS


def test_json_schema_answer_that_does_not_fit_is_a_clear_error(make_llm: MakeLLM) -> None:
    llm, _ = make_llm(
        [completion_body('{"city": "Paris"}')], structured_output_method="json_schema"
    )
    # The core's one error for it, in both frameworks (a ValueError too, as LlamaIndex's own).
    with pytest.raises(StructuredOutputError, match=r"(?s)not a valid Weather.*celsius"):
        llm.structured_predict(Weather, PROMPT, city="Paris")


def test_unknown_structured_output_method(make_llm: MakeLLM) -> None:
    llm, rec = make_llm()
    with pytest.raises(ValueError, match="structured_output_method"):
        llm.structured_predict(
            Weather, PROMPT, llm_kwargs={"structured_output_method": "xml"}, city="Paris"
        )
    with pytest.raises(ValueError, match="structured_output_method"):
        make_llm(structured_output_method="xml")
    assert rec.requests == []


def test_per_call_response_format_class_is_sent_strict_and_parsed(make_llm: MakeLLM) -> None:
    llm, rec = make_llm([completion_body(json.dumps(ARGS))])
    response = llm.chat([ChatMessage(role="user", content="Weather?")], response_format=Weather)
    assert rec.body["response_format"] == response_format_for(Weather, strict=True)
    assert response.message.additional_kwargs["parsed"] == Weather(**ARGS)
