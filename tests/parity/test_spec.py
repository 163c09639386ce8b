"""One settings spec: every public class that holds settings takes each connection setting the
same way, decided once in ``runcrate_integrations.config``.

The classes are found, not listed: every public name of the packages that is a subclass of
``config.Connection`` (so a class added later joins these tests by itself). For each class and
each setting: it is accepted under its name and aliases, rejected with the same message when
invalid, reaches the resolved client settings, and survives the framework's own save and load
(LangChain ``dumpd``/``load``, LlamaIndex ``to_dict``/``from_dict``). Then the copy rules: every
class deep-copies (sharing a caller's http client) and pickles (leaving a caller's client out,
with a warning), before and after its first call.
"""

from __future__ import annotations

import copy
import importlib
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from langchain_core.load import dumpd, load

from runcrate_integrations import config
from runcrate_integrations.chat.settings import ChatSettings
from runcrate_integrations.config import CONNECTION_FIELDS, Connection
from tests.helpers import Recorder, completion_body
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.unit.embeddings.replies import embedding_body

KEY = "rc_live_SPEC_TEST_KEY_5"
URL = "http://spec.test/v1"
PACKAGES = ("runcrate_integrations", "langchain_runcrate", "llama_index_runcrate")


def public_classes() -> list[type[Any]]:
    found: dict[str, type[Any]] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, Connection):
                found[value.__name__] = value
    return [found[name] for name in sorted(found)]


CLASSES = public_classes()


def test_the_four_original_classes_are_among_them() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"ChatRuncrate", "RuncrateLLM", "RuncrateEmbeddings", "RuncrateEmbedding"} <= names


def _model_kwargs(cls: type[Any]) -> dict[str, Any]:
    """What a class needs besides the settings under test (its model, named its own way)."""
    fields = cls.model_fields
    if "model" in fields and fields["model"].is_required():
        return {"model": "some/model"}
    if "model_name" in fields and fields["model_name"].is_required():
        return {"model_name": "some/model"}
    return {}


def make(cls: type[Any], **settings: Any) -> Any:
    return cls(**{**_model_kwargs(cls), "api_key": KEY, "base_url": URL, **settings})


def _is_langchain(cls: type[Any]) -> bool:
    return cls.__module__.startswith("langchain_runcrate")


def _save_and_load(obj: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The framework's own round trip; the key comes back from the environment, never the save."""
    monkeypatch.setenv("RUNCRATE_API_KEY", KEY)
    cls = type(obj)
    if _is_langchain(cls):
        saved = dumpd(obj)
        assert KEY not in repr(saved)
        return load(
            saved,
            valid_namespaces=["langchain_runcrate"],
            allowed_objects=[cls],
            secrets_from_env=True,
        )
    if hasattr(cls, "to_dict"):  # LlamaIndex
        saved = obj.to_dict()
        assert KEY not in repr(saved)
        return cls.from_dict(saved)
    saved = obj.model_dump(mode="json")  # the core's own classes: plain pydantic
    assert KEY not in repr(saved)
    return cls.model_validate({k: v for k, v in saved.items() if k != "api_key"})


# Valid values of every connection setting (besides the http clients, tested with the copies),
# how each shows in the resolved settings, and one invalid value with the message every class
# gives for it.
GOOD: dict[str, tuple[Any, Callable[[config.ClientSettings], Any]]] = {
    "api_key": ("rc_live_OTHER_KEY_9", lambda s: s.secret),
    "base_url": ("http://other.test/v1/", lambda s: s.base_url),
    "timeout": (httpx2.Timeout(12.0, connect=3.0), lambda s: s.timeout),
    "max_retries": (5, lambda s: s.max_retries),
    "default_headers": ({"X-Team": "ml"}, lambda s: dict(s.default_headers)),
    "rate_limits": (False, lambda s: s.rate_limits),
    "deadline": (4.5, lambda s: None),
}
RESOLVED = {
    "api_key": "rc_live_OTHER_KEY_9",
    "base_url": "http://other.test/v1",
    "timeout": httpx2.Timeout(12.0, connect=3.0),
    "max_retries": 5,
    "default_headers": {"X-Team": "ml"},
    "rate_limits": False,
    "deadline": None,
}
BAD: dict[str, tuple[Any, str]] = {
    "timeout": (0, "timeout must be > 0 seconds, got 0"),
    "max_retries": (-1, "max_retries"),
    "deadline": (0, "deadline"),
    "default_headers": ("X-Team: ml", "default_headers"),
    "rate_limits": ("sometimes", "rate_limits"),
}
ALIASES = {
    "api_key": ["openai_api_key"],
    "base_url": ["api_base", "openai_api_base"],
    "timeout": ["request_timeout"],
    "http_async_client": ["async_http_client"],
}


def _settings(obj: Any) -> config.ClientSettings:
    state = obj._state  # the derived state: the clients, or something that holds them
    return getattr(state, "clients", state).settings  # type: ignore[no-any-return]


def test_the_spec_names_every_connection_setting() -> None:
    assert set(CONNECTION_FIELDS) == {*GOOD, "http_client", "http_async_client"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_class_accepts_each_setting_the_same_way(cls: type[Any], name: str) -> None:
    value, shown = GOOD[name]
    obj = make(cls, **{name: value})
    got = getattr(obj, name)
    assert (got.get_secret_value() if name == "api_key" else got) == value
    if RESOLVED[name] is not None:
        assert shown(_settings(obj)) == RESOLVED[name]
    assert name in type(obj)._derived_from  # changing it rebuilds what it feeds


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_every_class_takes_the_same_aliases(cls: type[Any], name: str) -> None:
    for alias in ALIASES[name]:
        if cls.endpoint is not config.INFERENCE and alias.startswith("openai_"):
            continue  # the billing API is not OpenAI's: its URL is not openai_api_base
        value: Any = {
            "api_key": "rc_live_ALIAS_KEY_1",
            "base_url": "http://alias.test/v1",
            "timeout": 9.0,
            "http_async_client": httpx2.AsyncClient(),
        }[name]
        given = {"api_key": KEY, "base_url": URL}
        given.pop(name, None)  # the setting under test is given by its alias only
        obj = cls(**_model_kwargs(cls), **given, **{alias: value})
        got = getattr(obj, name)
        assert (got.get_secret_value() if name == "api_key" else got) == value, alias


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(BAD))
def test_every_class_rejects_each_bad_setting_the_same_way(cls: type[Any], name: str) -> None:
    value, message = BAD[name]
    with pytest.raises(ValueError, match=message):
        make(cls, **{name: value})
    obj = make(cls)
    with pytest.raises(ValueError, match=message):
        setattr(obj, name, value)
    assert getattr(obj, name) == type(obj).model_fields[name].get_default(
        call_default_factory=True
    )  # the old value is put back


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_class_reads_the_key_and_url_from_the_same_variables(
    cls: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCRATE_API_KEY", "rc_live_FROM_ENV_3")
    monkeypatch.setenv(cls.endpoint.env[0], "http://from-env.test/v1")
    obj = cls(**_model_kwargs(cls))
    assert _settings(obj).secret == "rc_live_FROM_ENV_3"
    assert _settings(obj).base_url == "http://from-env.test/v1"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_class_saves_and_loads_each_setting(
    cls: type[Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, _ = GOOD[name]
    loaded = _save_and_load(make(cls, **{name: value}), monkeypatch)
    assert type(loaded) is cls
    if name == "api_key":  # never saved: the loaded object reads RUNCRATE_API_KEY
        assert loaded.api_key.get_secret_value() == KEY
    else:
        assert getattr(loaded, name) == value


# ---------------------------------------------------------------------- model settings

# A valid value of every model setting a class declares through the spec (model names, request
# defaults, batch sizes, media choices); response_format differs by kind of class.
MODEL_SETTINGS: dict[str, Any] = {
    "model": "other/model",
    "model_name": "other/model",
    "extra_body": {"k": 1},
    "model_kwargs": {"reasoning_effort": "low"},
    "additional_kwargs": {"reasoning_effort": "low"},
    "frequency_penalty": 0.25,
    "presence_penalty": 0.25,
    "logprobs": True,
    "top_logprobs": 2,
    "max_tokens": 7,
    "n": 2,
    "seed": 3,
    "stop": ["END"],
    "stream_usage": False,
    "streaming": True,
    "temperature": 0.3,
    "top_p": 0.5,
    "context_window": 4096,
    "is_function_calling_model": False,
    "strict": False,
    "structured_output_method": "function_calling",
    "dimensions": 8,
    "embed_batch_size": 7,
    "chunk_size": 7,
    "encoding_format": "base64",
    "num_workers": 3,
    "max_concurrency": 3,
    "show_progress_bar": True,
    "image_model": "other/image",
    "speech_model": "other/speech",
    "transcription_model": "other/transcription",
    "video_model": "other/video",
    "language": "de",
    "max_duration": 4,
    "poll_interval": 3.0,
    "video_timeout": 100.0,
    "save_dir": "/tmp/runcrate-spec-saves",
    "speech_format": "pcm",
    "voice": "other-voice",
    "segments": True,
}
CHAT_RESPONSE_FORMAT = {"type": "json_object"}
# The frameworks' own fields that a media tool or reader sets for itself (its name, schema,
# answer form), not settings a user gives.
FRAMEWORK_OWN = {"args_schema", "description", "handle_tool_error", "name", "is_remote"}


def model_settings(cls: type[Any]) -> list[str]:
    """The settings a class declares through the spec besides the connection ones."""
    connection = set(GOOD) | {"http_client", "http_async_client"}
    own = set(cls._derived_from) - connection - FRAMEWORK_OWN
    if "response_format" in own and not issubclass(cls, ChatSettings):
        own.discard("response_format")  # a tool's "content_and_artifact", LangChain's own
    return sorted(own)


MODEL_CASES = [(cls, name) for cls in CLASSES for name in model_settings(cls)]


def test_every_model_setting_has_a_value_to_walk() -> None:
    names = {name for _, name in MODEL_CASES} - {"response_format"}
    assert names <= set(MODEL_SETTINGS), sorted(names - set(MODEL_SETTINGS))
    assert {"model", "temperature", "dimensions", "image_model"} <= names


@pytest.mark.parametrize(
    ("cls", "name"), MODEL_CASES, ids=[f"{name}-{cls.__name__}" for cls, name in MODEL_CASES]
)
def test_every_class_saves_and_loads_each_model_setting(
    cls: type[Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = CHAT_RESPONSE_FORMAT if name == "response_format" else MODEL_SETTINGS[name]
    obj = make(cls, **{name: value})
    given = getattr(obj, name)
    assert (str(given) if name == "save_dir" else given) == value
    loaded = _save_and_load(obj, monkeypatch)
    assert type(loaded) is cls and getattr(loaded, name) == given


# ---------------------------------------------------------------------- copy rules


def _answer_for(cls: type[Any]) -> httpx2.Response | None:
    if cls.__name__ in ("ChatRuncrate", "RuncrateLLM"):
        return completion_body("hi")
    if cls.__name__ in ("RuncrateEmbeddings", "RuncrateEmbedding"):
        return httpx2.Response(200, json=embedding_body([[1.0, 2.0]]))
    return None


def _call(obj: Any) -> None:
    """One call (the recorder answers "hi" / [1.0, 2.0]; the echo server echoes "hi")."""
    name = type(obj).__name__
    if name == "ChatRuncrate":
        assert obj.invoke("hi").content == "hi"
    elif name == "RuncrateLLM":
        from llama_index.core.llms import ChatMessage

        assert obj.chat([ChatMessage(role="user", content="hi")]).message.content == "hi"
    elif name == "RuncrateEmbeddings":
        assert len(obj.embed_query("hi")) >= 2
    elif name == "RuncrateEmbedding":
        assert len(obj.get_text_embedding("hi")) >= 2


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("own_client", [False, True], ids=["pooled", "callers-client"])
@pytest.mark.parametrize("when", ["before", "after"], ids=["before-a-call", "after-a-call"])
def test_every_class_deep_copies_and_pickles(
    cls: type[Any], own_client: bool, when: str, fake_server: FakeOpenAIServer
) -> None:
    answer = _answer_for(cls)
    recorder = Recorder([answer] * 4 if answer is not None else [])
    http = recorder.client() if own_client else None
    where = URL if own_client else fake_server.base_url  # pooled: the loopback echo server
    obj = make(cls, http_client=http, base_url=where)
    if when == "after" and answer is not None:
        _call(obj)

    deep = copy.deepcopy(obj)
    assert deep.http_client is http  # the caller's client is shared, never copied
    assert deep.model_dump() == obj.model_dump()
    copied = obj.model_copy(deep=True)
    assert copied.http_client is http
    if answer is not None and own_client:
        sent = len(recorder.requests)
        _call(deep)
        assert len(recorder.requests) == sent + 1  # through the caller's client

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = pickle.dumps(obj)
    said = [str(w.message) for w in caught]
    if own_client:
        assert any("pickled without its http_client" in m for m in said), said
    else:
        assert not said
    revived = pickle.loads(data)
    assert revived.http_client is None
    assert revived.model_dump() == obj.model_dump()  # every setting but the caller's client
    assert _settings(revived) == _settings(obj)
