"""with_structured_output: function_calling / json_schema / json_mode, include_raw, refusals."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from runcrate_integrations import StructuredOutputError
from runcrate_integrations.chat.request import response_format_for
from tests.helpers import chunk, completion_body, sse, text_chunks, tool_call, tool_call_chunks

from .conftest import MakeChat


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")
    age: int


class Movie(TypedDict):
    """A movie."""

    title: str
    year: int


PERSON_PARAMS = {
    "properties": {
        "name": {"description": "Full name", "type": "string"},
        "age": {"type": "integer"},
    },
    "required": ["name", "age"],
    "type": "object",
}
MOVIE_PARAMS = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["title", "year"],
}
ANSWER_SCHEMA = {
    "title": "Answer",
    "description": "An answer",
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
ADA = {"name": "Ada", "age": 36}


def forced(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return completion_body(None, tool_calls=[tool_call(name, args)])


def test_function_calling_is_the_default(make_chat: MakeChat) -> None:
    llm, rec = make_chat([forced("Person", ADA)])
    result = llm.with_structured_output(Person).invoke("Who wrote the first program?")
    assert result == Person(name="Ada", age=36)
    assert rec.body == {
        "model": "deepseek/deepseek-v3.2",
        "messages": [{"role": "user", "content": "Who wrote the first program?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "Person",
                    "description": "A person.",
                    "parameters": PERSON_PARAMS,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "Person"}},
    }


async def test_function_calling_typeddict_and_json_schema_give_dicts(make_chat: MakeChat) -> None:
    llm, rec = make_chat(
        [forced("Movie", {"title": "Heat", "year": 1995}), forced("Answer", {"text": "yes"})]
    )
    assert await llm.with_structured_output(Movie).ainvoke("x") == {"title": "Heat", "year": 1995}
    assert rec.body["tools"][0]["function"]["parameters"] == MOVIE_PARAMS
    assert llm.with_structured_output(ANSWER_SCHEMA).invoke("x") == {"text": "yes"}
    assert rec.body["tool_choice"] == {"type": "function", "function": {"name": "Answer"}}


def test_function_calling_strict(make_chat: MakeChat) -> None:
    llm, rec = make_chat([forced("Person", ADA)])
    llm.with_structured_output(Person, strict=True).invoke("x")
    function = rec.body["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False


@pytest.mark.parametrize("strict", [None, True])
def test_json_schema_method(make_chat: MakeChat, strict: bool | None) -> None:
    llm, rec = make_chat([completion_body(json.dumps(ADA))])
    result = llm.with_structured_output(Person, method="json_schema", strict=strict).invoke("x")
    assert result == Person(name="Ada", age=36)
    # The core's one builder, the same for LlamaIndex: the class's own JSON schema.
    schema: dict[str, Any] = Person.model_json_schema()
    expected: dict[str, Any] = {"name": "Person", "description": "A person.", "schema": schema}
    if strict:
        expected["schema"] = {**schema, "additionalProperties": False, "required": ["name", "age"]}
        expected["strict"] = True
    assert rec.body["response_format"] == {"type": "json_schema", "json_schema": expected}
    assert "tools" not in rec.body


def test_json_schema_with_typeddict(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body('{"title": "Heat", "year": 1995}')])
    result = llm.with_structured_output(Movie, method="json_schema").invoke("x")
    assert result == {"title": "Heat", "year": 1995}
    assert rec.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Movie", "description": "A movie.", "schema": MOVIE_PARAMS},
    }


# OpenAI's docs write the json_schema spec itself; it is sent as given, not read as a schema.
OPENAI_SPEC = {
    "name": "movie",
    "schema": {**MOVIE_PARAMS, "additionalProperties": False},
    "strict": True,
}


@pytest.mark.parametrize(
    "schema",
    [OPENAI_SPEC, {"type": "json_schema", "json_schema": OPENAI_SPEC}],
    ids=["spec", "response_format"],
)
def test_json_schema_spec_in_openai_shape_is_sent_as_given(
    make_chat: MakeChat, schema: dict[str, Any]
) -> None:
    llm, rec = make_chat([completion_body('{"title": "Heat", "year": 1995}')])
    result = llm.with_structured_output(schema, method="json_schema").invoke("x")
    assert result == {"title": "Heat", "year": 1995}
    assert rec.body == {
        "model": "deepseek/deepseek-v3.2",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": OPENAI_SPEC},
    }


async def test_strict_argument_sets_the_strict_of_a_spec_in_openai_shape(
    make_chat: MakeChat,
) -> None:
    llm, rec = make_chat(
        [
            completion_body('{"title": "Heat", "year": 1995}'),
            completion_body('{"title": "Ran", "year": 1985}'),
        ]
    )
    loose = await llm.with_structured_output(
        OPENAI_SPEC, method="json_schema", strict=False
    ).ainvoke("x")
    assert loose == {"title": "Heat", "year": 1995}
    assert rec.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {**OPENAI_SPEC, "strict": False},
    }
    unset = {"name": "movie", "schema": MOVIE_PARAMS}
    strict = await llm.with_structured_output(unset, method="json_schema", strict=True).ainvoke("x")
    assert strict == {"title": "Ran", "year": 1985}
    assert rec.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {**unset, "strict": True},
    }
    assert OPENAI_SPEC["strict"] is True and "strict" not in unset  # the caller's are untouched


async def test_json_mode(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body(json.dumps(ADA)), completion_body('{"a": 1}')])
    assert await llm.with_structured_output(Person, method="json_mode").ainvoke("x") == Person(
        name="Ada", age=36
    )
    assert rec.body["response_format"] == {"type": "json_object"}
    assert llm.with_structured_output(method="json_mode").invoke("x") == {"a": 1}


def test_include_raw(make_chat: MakeChat) -> None:
    llm, _ = make_chat([forced("Person", ADA)])
    out = llm.with_structured_output(Person, include_raw=True).invoke("x")
    assert isinstance(out, dict)
    assert out["parsed"] == Person(name="Ada", age=36)
    assert out["parsing_error"] is None
    assert isinstance(out["raw"], AIMessage)
    assert out["raw"].tool_calls[0]["name"] == "Person"


def test_include_raw_keeps_parse_errors(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body('{"name": "Ada"}')])
    out = llm.with_structured_output(Person, method="json_schema", include_raw=True).invoke("x")
    assert isinstance(out, dict)
    assert out["parsed"] is None
    assert isinstance(out["parsing_error"], OutputParserException)
    assert out["raw"].content == '{"name": "Ada"}'


def test_parse_error_raises_without_include_raw(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("not json")])
    with pytest.raises(OutputParserException):
        llm.with_structured_output(Person, method="json_schema").invoke("x")


def _refusal() -> dict[str, Any]:
    body = completion_body(None)
    body["choices"][0]["message"]["refusal"] = "I can't share personal data."
    return body


def test_refusal_raises_model_refusal_error(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_refusal()])
    with pytest.raises(ModelRefusalError, match="I can't share personal data") as info:
        llm.with_structured_output(Person, method="json_schema").invoke("x")
    assert isinstance(info.value.raw_message, AIMessage)


def test_refusal_with_include_raw_is_the_parsing_error(make_chat: MakeChat) -> None:
    llm, _ = make_chat([_refusal()])
    out = llm.with_structured_output(Person, include_raw=True).invoke("x")
    assert isinstance(out, dict)
    assert isinstance(out["parsing_error"], ModelRefusalError)
    assert out["parsed"] is None


def test_bad_arguments(make_chat: MakeChat) -> None:
    llm, _ = make_chat()
    with pytest.raises(ValueError, match="Unrecognized method 'xml'"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]  # on purpose
    with pytest.raises(ValueError, match="needs a schema"):
        llm.with_structured_output(method="json_schema")
    with pytest.raises(ValueError, match="unsupported arguments"):
        llm.with_structured_output(Person, tools=[])


# ------------------------------------------------------------------ streamed structured output


def _streamed_tool_call(name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    text = json.dumps(args)
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    return tool_call_chunks(name, pieces)


def _streamed_text(args: dict[str, Any]) -> list[dict[str, Any]]:
    text = json.dumps(args)
    return text_chunks([text[i : i + 5] for i in range(0, len(text), 5)], usage=False)


def _as_dict(value: Any) -> dict[str, Any]:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


MOVIE = {"title": "Metropolis", "year": 1927}


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
@pytest.mark.parametrize(
    "schema", [Movie, {**MOVIE_PARAMS, "title": "Movie"}], ids=["TypedDict", "JSON schema"]
)
def test_stream_yields_growing_partial_objects(
    make_chat: MakeChat, method: str, schema: Any
) -> None:
    reply = (
        _streamed_tool_call("Movie", MOVIE)
        if method == "function_calling"
        else (_streamed_text(MOVIE))
    )
    llm, _ = make_chat([sse(reply)])
    outputs = list(llm.with_structured_output(schema, method=method).stream("A silent film?"))
    assert len(outputs) > 3  # partials as the JSON grows, not one object at the end
    assert outputs[-1] == MOVIE
    for before, after in itertools.pairwise(outputs):
        assert set(before) <= set(after)  # each partial grows the previous one


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
async def test_astream_yields_partial_pydantic_objects(make_chat: MakeChat, method: str) -> None:
    class Film(BaseModel):
        title: str
        year: int = 0

    name = "Film"
    reply = (
        _streamed_tool_call(name, MOVIE)
        if method == "function_calling"
        else (_streamed_text(MOVIE))
    )
    llm, _ = make_chat([sse(reply)])
    outputs = [o async for o in llm.with_structured_output(Film, method=method).astream("?")]
    assert len(outputs) > 1
    assert all(isinstance(o, Film) for o in outputs)
    assert outputs[0].year == 0 and outputs[-1] == Film(**MOVIE)


def test_streamed_refusal_still_raises(make_chat: MakeChat) -> None:
    reply = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"refusal": "I can't help."}),
        chunk({}, finish_reason="stop"),
    ]
    llm, _ = make_chat([sse(reply)])
    with pytest.raises(ModelRefusalError, match="I can't help"):
        list(llm.with_structured_output(Person, method="json_schema").stream("?"))


# ------------------------------------------------------------------ per-call response_format


def test_per_call_response_format_class_is_sent_strict_and_parsed(make_chat: MakeChat) -> None:
    llm, rec = make_chat([completion_body(json.dumps(ADA)), sse(_streamed_text(ADA))])
    message = llm.invoke("Who?", response_format=Person)
    assert rec.body["response_format"] == response_format_for(Person, strict=True)
    assert rec.body["response_format"]["json_schema"]["strict"] is True
    assert message.additional_kwargs["parsed"] == Person(**ADA)
    streamed = None
    for piece in llm.stream("Who?", response_format=Person):
        streamed = piece if streamed is None else streamed + piece
    assert streamed is not None and streamed.additional_kwargs["parsed"] == Person(**ADA)


def test_per_call_response_format_that_does_not_fit_raises(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body('{"name": "Ada"}')])
    with pytest.raises(StructuredOutputError, match="not a valid Person"):
        llm.invoke("Who?", response_format=Person)


def test_per_call_response_format_of_another_type_is_refused(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    with pytest.raises(ValueError, match="response_format must be a dict"):
        llm.invoke("Who?", response_format="json")
    assert rec.requests == []
