"""LangChain conventions: metadata, tracing params, secrets, serialization, profile, imports."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings

import pytest
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import AIMessage
from pydantic import SecretStr

import langchain_runcrate
from langchain_runcrate import ChatRuncrate
from langchain_runcrate._profile import CatalogProfile
from runcrate_integrations import catalog
from tests.helpers import completion_body

from .conftest import KEY, MODEL, MakeChat

# ------------------------------------------------------------------ output


def test_usage_details_and_metadata_from_invoke(make_chat: MakeChat) -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    llm, _ = make_chat([completion_body("4", reasoning_content="2+2=4", usage=usage)])
    message = llm.invoke("2+2?")
    assert message.usage_metadata == {
        "input_tokens": 100,
        "output_tokens": 50,
        "total_tokens": 150,
        "input_token_details": {"cache_read": 64},
        "output_token_details": {"reasoning": 30},
    }
    assert message.response_metadata == {
        "token_usage": usage,
        "model_name": MODEL,
        "system_fingerprint": "fp_rc1",
        "finish_reason": "stop",
        "id": "chatcmpl-123",
        "model_provider": "runcrate",
    }
    assert message.additional_kwargs == {"reasoning_content": "2+2=4"}
    assert message.content_blocks == [
        {"type": "reasoning", "reasoning": "2+2=4"},
        {"type": "text", "text": "4"},
    ]


async def test_reasoning_in_content_blocks_from_ainvoke(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("No.", reasoning_content="1001 = 7 x 11 x 13")])
    message = await llm.ainvoke("Is 1001 prime?")
    assert message.content_blocks == [
        {"type": "reasoning", "reasoning": "1001 = 7 x 11 x 13"},
        {"type": "text", "text": "No."},
    ]


def test_output_version_v1_puts_blocks_in_content(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("4", reasoning_content="think")], output_version="v1")
    message = llm.invoke("2+2?")
    assert message.content == [
        {"type": "reasoning", "reasoning": "think"},
        {"type": "text", "text": "4"},
    ]


def test_v1_history_round_trips(make_chat: MakeChat) -> None:
    llm, rec = make_chat(
        [completion_body("4", reasoning_content="think"), completion_body()], output_version="v1"
    )
    first = llm.invoke("2+2?")
    llm.invoke(["2+2?", first, "and 3+3?"])
    assert rec.body["messages"][1] == {"role": "assistant", "content": "4"}


# ------------------------------------------------------------------ metadata & tracing


def test_llm_type_and_identifying_params(make_chat: MakeChat) -> None:
    llm, _ = make_chat(temperature=0.5, max_tokens=10, model_kwargs={"top_k": 5})
    assert llm._llm_type == "runcrate-chat"
    assert llm._identifying_params == {
        "model": MODEL,
        "temperature": 0.5,
        "max_tokens": 10,
        "top_k": 5,
    }


def test_langsmith_params(make_chat: MakeChat) -> None:
    llm, _ = make_chat(temperature=0.5, max_tokens=10, stop="END")
    assert llm._get_ls_params() == {
        "ls_provider": "runcrate",
        "ls_model_name": MODEL,
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_max_tokens": 10,
        "ls_stop": ["END"],
    }
    assert llm._get_ls_params(stop=["x"], model="qwen/qwen3-32b", temperature=1.0) == {
        "ls_provider": "runcrate",
        "ls_model_name": "qwen/qwen3-32b",
        "ls_model_type": "chat",
        "ls_temperature": 1.0,
        "ls_max_tokens": 10,
        "ls_stop": ["x"],
    }


# ------------------------------------------------------------------ secrets & serialization


def test_key_is_secret_everywhere(make_chat: MakeChat, caplog: pytest.LogCaptureFixture) -> None:
    llm, _ = make_chat([completion_body()])
    assert isinstance(llm.api_key, SecretStr)
    assert llm.lc_secrets == {"api_key": "RUNCRATE_API_KEY"}
    assert ChatRuncrate.is_lc_serializable()
    for text in (repr(llm), str(llm), dumps(llm), json.dumps(llm.asdict())):
        assert KEY not in text
    with caplog.at_level(logging.DEBUG):
        llm.invoke("hi")
    assert caplog.records  # the openai client did log the request
    assert KEY not in caplog.text


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_dumpd_and_load_without_the_key(make_chat: MakeChat) -> None:
    llm, _ = make_chat(temperature=0.2, stop=["END"], model_kwargs={"top_k": 3})
    data = dumpd(llm)
    assert data["id"] == ["langchain_runcrate", "chat_models", "ChatRuncrate"]
    assert data["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["RUNCRATE_API_KEY"]}
    assert "http_client" not in data["kwargs"]
    loaded = load(
        data,
        secrets_map={"RUNCRATE_API_KEY": "rc_live_other"},
        valid_namespaces=["langchain_runcrate"],
        allowed_objects=[ChatRuncrate],
    )
    assert isinstance(loaded, ChatRuncrate)
    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == "rc_live_other"
    assert (loaded.model, loaded.temperature, loaded.stop, loaded.model_kwargs) == (
        MODEL,
        0.2,
        ["END"],
        {"top_k": 3},
    )


def test_key_and_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_env")
    monkeypatch.setenv("RUNCRATE_BASE_URL", "https://proxy.example.test/v1")
    llm = ChatRuncrate(model=MODEL)
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "rc_live_env"
    assert llm.base_url == "https://proxy.example.test/v1"
    assert str(llm.client.base_url) == "https://proxy.example.test/v1/"


def test_validation_errors_never_echo_the_key() -> None:
    with pytest.raises(ValueError) as info:
        ChatRuncrate(api_key=KEY)  # type: ignore[call-arg]  # model is missing on purpose
    assert "model" in str(info.value)
    assert KEY not in str(info.value)


# ------------------------------------------------------------------ construction


def test_unknown_arguments_go_to_model_kwargs_with_a_warning(make_chat: MakeChat) -> None:
    with pytest.warns(UserWarning, match="'min_p' is not a ChatRuncrate parameter"):
        llm, rec = make_chat([completion_body()], min_p=0.1)
    assert llm.model_kwargs == {"min_p": 0.1}
    llm.invoke("hi")
    assert rec.body["min_p"] == 0.1


def test_chat_openai_request_parameters_go_to_the_body_silently(make_chat: MakeChat) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm, rec = make_chat([completion_body()], reasoning_effort="high", logit_bias={"1": 2})
    assert llm.model_kwargs == {"reasoning_effort": "high", "logit_bias": {"1": 2}}
    llm.invoke("hi")
    assert (rec.body["reasoning_effort"], rec.body["logit_bias"]) == ("high", {"1": 2})


def test_misspelt_parameter_is_an_error(make_chat: MakeChat) -> None:
    with pytest.raises(ValueError, match="'temprature'; did you mean 'temperature'"):
        make_chat(temprature=0.5)


def test_same_parameter_twice_is_an_error(make_chat: MakeChat) -> None:
    with pytest.raises(ValueError, match="'top_k' was given both directly and in model_kwargs"):
        make_chat(top_k=3, model_kwargs={"top_k": 4})


def test_model_validate_builds_a_working_model(make_chat: MakeChat) -> None:
    _, rec = make_chat([completion_body("ok")])
    llm = ChatRuncrate.model_validate(
        {"model": MODEL, "api_key": KEY, "http_client": rec.client(), "temperature": 0.1}
    )
    assert llm.invoke("hi").content == "ok"
    assert rec.body["temperature"] == 0.1


def test_instances_with_equal_settings_share_one_client() -> None:
    a = ChatRuncrate(model=MODEL, api_key=KEY)
    b = ChatRuncrate(model="other", api_key=KEY, temperature=1.0)
    c = ChatRuncrate(model=MODEL, api_key="rc_live_different")
    assert a.client is b.client
    assert a.client is not c.client


async def test_async_client_is_pooled_per_loop() -> None:
    a = ChatRuncrate(model=MODEL, api_key=KEY)
    b = ChatRuncrate(model=MODEL, api_key=KEY)
    assert a.async_client is b.async_client


# ------------------------------------------------------------------ profile


MODELS = {
    "object": "list",
    "data": [
        {
            "id": MODEL,
            "context_length": 163840,
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "supported_features": ["tools", "json_schema", "reasoning"],
        },
        {
            "id": "qwen/qwen3-vl-32b",
            "context_length": 32768,
            "input_modalities": ["text", "image"],
            "supported_features": ["tools"],
        },
        {"id": "bare/model"},
    ],
}


def test_profile_is_read_from_the_catalog_on_first_use(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    rec.models = MODELS["data"]
    assert rec.catalog_requests == []  # building the model sends nothing
    assert llm.profile == {
        "max_input_tokens": 163840,
        "text_inputs": True,
        "image_inputs": False,
        "image_url_inputs": False,
        "audio_inputs": False,
        "video_inputs": False,
        "text_outputs": True,
        "image_outputs": False,
        "tool_calling": True,
        "tool_choice": True,
        "tool_call_streaming": True,
        "structured_output": True,
        "reasoning_output": True,
    }
    assert len(rec.catalog_requests) == 1
    vision, rec2 = make_chat(model="qwen/qwen3-vl-32b")  # same base URL: the cached catalog
    assert vision.profile is not None
    assert vision.profile["image_inputs"] is True
    assert vision.profile["structured_output"] is False
    assert "reasoning_output" not in vision.profile
    bare, _ = make_chat(model="bare/model")
    assert bare.profile == {} and not bare.profile  # the catalog states nothing about it
    assert rec2.catalog_requests == [] and rec.requests == rec2.requests == []


def test_profile_falls_back_quietly_and_retries_later(
    make_chat: MakeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm, rec = make_chat()
    rec.models = None  # GET /models gets no answer: the fetch fails
    assert llm.profile.get("max_input_tokens") is None  # type: ignore[union-attr]  # set
    assert llm.profile.get("max_input_tokens") is None  # type: ignore[union-attr]  # set
    assert len(rec.requests) == 1  # tried once, not on every read
    monkeypatch.setattr(catalog, "RETRY_AFTER", 0.0)  # the back-off is over
    rec.models = MODELS["data"]
    assert llm.profile["max_input_tokens"] == 163840  # type: ignore[index]  # set
    assert len(rec.catalog_requests) == 1


def test_profile_follows_the_model(make_chat: MakeChat) -> None:
    llm, rec = make_chat()
    rec.models = MODELS["data"]
    llm.model = "qwen/qwen3-vl-32b"
    assert llm.profile is not None and llm.profile["max_input_tokens"] == 32768
    other = llm.model_copy(update={"model": MODEL})
    assert other.profile is not None and other.profile["max_input_tokens"] == 163840


def test_explicit_profile_wins(make_chat: MakeChat) -> None:
    llm, _ = make_chat(profile={"max_input_tokens": 1000})
    assert llm.profile == {"max_input_tokens": 1000}


def test_construction_resolves_the_profile_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # langchain-core assigns the resolved profile inside a validator; with assignments validated,
    # a None there set the validator off again until the recursion limit (about 1 ms a model).
    resolved: list[object] = []
    original = ChatRuncrate._resolve_model_profile

    def counting(self: ChatRuncrate) -> object:
        resolved.append(self)
        return original(self)

    monkeypatch.setattr(ChatRuncrate, "_resolve_model_profile", counting)
    llm = ChatRuncrate(model=MODEL, api_key=KEY, base_url="http://127.0.0.1:9/v1")
    assert len(resolved) == 1
    assert isinstance(llm.profile, CatalogProfile) and llm.model_fields_set >= {"model"}


# ------------------------------------------------------------------ package


def test_embeddings_export() -> None:
    from langchain_runcrate.embeddings import RuncrateEmbeddings

    assert langchain_runcrate.RuncrateEmbeddings is RuncrateEmbeddings


def test_openai_is_imported_only_when_a_request_is_made() -> None:
    # `import openai` costs ~0.5 s: importing and constructing must not pay for it.
    code = (
        "import sys\n"
        "from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings\n"
        "llm = ChatRuncrate(model='m', api_key='rc_live_x', temperature=0.1)\n"
        "llm.bind_tools([]).with_config({})\n"
        "RuncrateEmbeddings(model='e', api_key='rc_live_x')\n"
        "assert 'openai' not in sys.modules, 'openai imported too early'\n"
        "llm.client\n"
        "assert 'openai' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = langchain_runcrate.Nope


def test_import_needs_neither_llama_index_nor_langchain_openai() -> None:
    code = (
        "import sys\n"
        "for name in ('llama_index', 'llama_index.core', 'langchain_openai'):\n"
        "    sys.modules[name] = None  # importing any of them now fails\n"
        "from langchain_runcrate import ChatRuncrate\n"
        "ChatRuncrate(model='m', api_key='rc_live_x').bind_tools([]).with_config({})\n"
        "loaded = [m for m, mod in sys.modules.items() if mod is not None]\n"
        "assert not [m for m in loaded if m.startswith(('llama_index', 'langchain_openai'))]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_ai_message_type_is_returned(make_chat: MakeChat) -> None:
    llm, _ = make_chat([completion_body("x")])
    assert type(llm.invoke("hi")) is AIMessage


def test_public_names_are_exactly_the_lazy_exports() -> None:
    import langchain_runcrate
    from langchain_runcrate import errors

    exported = set(langchain_runcrate.__all__)
    assert exported == set(langchain_runcrate._LAZY) | {"__version__"}
    assert set(langchain_runcrate._ERRORS) == set(errors.__all__) - {"to_langchain_error"}
    for name in exported:
        assert getattr(langchain_runcrate, name) is not None
