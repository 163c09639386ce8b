"""docs/errors.md's exception table (and docs/langchain.md's), checked row by row.

The tables are read from the pages, so a changed row is what gets checked. Each row is turned
into a failure a local scriptable server can produce (its status and code, or the condition the
row names: a timeout, a dropped connection, a cut stream, an error event, an unusable body, no
key, a bad parameter) and provoked through ``ChatRuncrate`` and ``RuncrateLLM`` (for streams,
through their streaming methods) and, where the row applies to them, ``RuncrateEmbeddings`` and
``RuncrateEmbedding``. The raised error must be what the row says: the class (and what its
parenthesis says it also is or has), the ``openai`` base, in LangChain the langchain-core class
(and ``is_retryable`` when the row says), and as many requests as "Retried?" implies with
``max_retries=1``. In LlamaIndex the class must be the core's own ("raised unchanged").
A row this file cannot provoke fails: add its condition to :func:`scenarios`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import langchain_core.exceptions
import openai
import pytest

import runcrate_integrations
from tests.support.fake_openai_server import (
    Disconnect,
    FakeOpenAIServer,
    JSONResponse,
    RecordedRequest,
    Spec,
    SSEResponse,
    chat_stream,
    error,
    running_server,
)

from .pages import ROOT

KEY = "rc_live_DOCS_TABLE_TEST_KEY_7"
MODEL = "deepseek/deepseek-v3.2"
RETRIES = 1  # every retried row must cost exactly 1 + RETRIES requests
SHORT_TIMEOUT = 0.2
# Statuses tried for "other 4xx" (those with a row of their own are left out) and for "5xx".
OTHER_4XX = (405, 410, 413, 415, 418, 422)
ANY_5XX = (500, 502, 503)


# ---------------------------------------------------------------------- reading tables


def read_table(page: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the first table in ``page`` whose header row starts with ``first_header``."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        cells = _cells(line)
        if cells and cells[0] == first_header and i + 1 < len(lines) and "---" in lines[i + 1]:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                values = _cells(row)
                assert len(values) == len(cells), f"{page}: row has {len(values)} cells: {row}"
                rows.append(dict(zip(cells, values, strict=True)))
            return rows
    raise AssertionError(f"{page}: no table whose first column is {first_header!r}")


def _cells(line: str) -> list[str]:
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")):
        return []
    return [c.strip() for c in line[1:-1].split("|")]


def names(cell: str) -> list[str]:
    """The backticked words of a cell: ``"`A` (a `B`)"`` -> ``["A", "B"]``."""
    return re.findall(r"`([^`]+)`", cell)


# ---------------------------------------------------------------------- provoking a row


def _chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


@dataclass(frozen=True)
class Scenario:
    """One way to make a row happen."""

    name: str
    answer: Callable[[], Spec] | None = None  # the server's answer to every chat/embeddings POST
    call: str = "call"  # "call" | "stream" | "construct" (no key) | "bad_param"
    options: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    code: str | None = None
    embeddings: bool = True  # the row applies to the embedding classes too


def status_scenario(status: int, code: str | None, context: bool = False) -> Scenario:
    sent = code or "some_error"
    message = (
        "This model's maximum context length is 8192 tokens"
        if context
        else f"status {status} from the docs test"
    )
    headers = {"retry-after-ms": "5"}  # a retried row retries at once
    if status == 402:
        headers["x-should-retry"] = "true"  # docs/errors.md: never retried, even so
    return Scenario(
        f"{status}{'-context' if context else ''}",
        answer=lambda: error(status, sent, message, headers),
        status=status,
        code=sent,
    )


def scenarios(text: str, own_rows: set[int]) -> list[Scenario]:
    """How to provoke the row whose status and code cells read ``text``."""
    lowered = text.lower()
    code = next((n for n in names(text) if re.fullmatch(r"[a-z_]+", n)), None)
    # The conditions first: their text may hold a number that is not a status ("a 200 stream").
    if "timeout" in lowered:
        return [
            Scenario(
                "timeout", answer=lambda: Disconnect(delay=2.0), options={"timeout": SHORT_TIMEOUT}
            )
        ]
    if "connection failed" in lowered:
        return [Scenario("connection", answer=lambda: Disconnect())]
    if "stream cut" in lowered:
        return [
            Scenario(
                "stream-cut",
                answer=lambda: chat_stream(["Hel", "lo"], drop_after=2),
                call="stream",
                embeddings=False,
            )
        ]
    if "event inside" in lowered:
        event = {"error": {"code": "server_overloaded", "message": "The server is overloaded"}}
        return [
            Scenario(
                "stream-error-event",
                call="stream",
                embeddings=False,
                answer=lambda: SSEResponse([_chunk({"content": "Hel"}), event], done=False),
                code="server_overloaded",
            )
        ]
    if "unusable" in lowered:
        return [Scenario("unusable-body", answer=lambda: JSONResponse("this is not JSON"))]
    if "page not found" in lowered:  # a base URL without /v1: a plain-text 404 for the path
        return [
            Scenario(
                "wrong-path",
                answer=lambda: JSONResponse(
                    "404 page not found", status=404, headers={"content-type": "text/plain"}
                ),
            )
        ]
    if "no key" in lowered:
        return [Scenario("no-key", call="construct")]
    if "out of range" in lowered:
        return [Scenario("bad-parameter", call="bad_param", embeddings=False)]
    if "other 4xx" in lowered:
        return [status_scenario(s, None) for s in OTHER_4XX if s not in own_rows]
    if "5xx" in lowered:
        return [status_scenario(s, code) for s in ANY_5XX]
    statuses = [int(s) for s in re.findall(r"\b([1-5]\d\d)\b", text)]
    if statuses:
        return [status_scenario(s, code, context="context" in lowered) for s in statuses]
    raise AssertionError(f"no way to provoke the row {text!r}: add it to scenarios()")


# ---------------------------------------------------------------------- the classes under test


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with running_server() as srv:
        yield srv


def _answering(server: FakeOpenAIServer, scenario: Scenario) -> None:
    server.reset()

    def respond(request: RecordedRequest) -> Spec:
        if request.method == "POST" and scenario.answer is not None:
            return scenario.answer()
        return JSONResponse({"object": "list", "data": server.models})  # the catalog

    server.default = respond


def _posts(server: FakeOpenAIServer) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


def provoke(
    kind: str, scenario: Scenario, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> BaseException:
    """Make ``scenario`` happen through ``kind`` ("langchain-chat", "llama_index-embeddings",
    ...) and return what was raised."""
    from llama_index.core.llms import ChatMessage

    from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings
    from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM

    _answering(server, scenario)
    settings: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "max_retries": RETRIES,
        **scenario.options,
    }
    if scenario.call == "construct":
        monkeypatch.delenv("RUNCRATE_API_KEY", raising=False)
        monkeypatch.delenv("RUNCRATE_BASE_URL", raising=False)
        settings = {}
    classes: dict[str, Callable[..., Any]] = {
        "langchain-chat": lambda: ChatRuncrate(model=MODEL, **settings),
        "llama_index-chat": lambda: RuncrateLLM(model=MODEL, **settings),
        "langchain-embeddings": lambda: RuncrateEmbeddings(model="BAAI/bge-m3", **settings),
        "llama_index-embeddings": lambda: RuncrateEmbedding(model_name="BAAI/bge-m3", **settings),
    }
    messages = [ChatMessage(role="user", content="hi")]
    try:
        model = classes[kind]()
        if scenario.call == "construct":
            raise AssertionError(f"{kind} was built without a key")
        if kind == "langchain-chat":
            if scenario.call == "stream":
                list(model.stream("hi"))
            else:
                model.invoke("hi", **({"temperature": 5} if scenario.call == "bad_param" else {}))
        elif kind == "llama_index-chat":
            if scenario.call == "stream":
                list(model.stream_chat(messages))
            else:
                model.chat(messages, **({"temperature": 5} if scenario.call == "bad_param" else {}))
        elif kind == "langchain-embeddings":
            model.embed_documents(["hi"])
        else:
            model.get_text_embedding_batch(["hi"])
    except AssertionError:
        raise
    except Exception as exc:
        return exc
    raise AssertionError(f"{kind}: {scenario.name} raised nothing")


def resolve(name: str, *modules: Any) -> type[BaseException]:
    """A class named in a table: ``openai.X``, or the first of ``modules`` (then builtins)
    that has it."""
    if name.startswith("openai."):
        found = getattr(openai, name.removeprefix("openai."), None)
    else:
        found = next((getattr(m, name) for m in (*modules, builtins) if hasattr(m, name)), None)
    assert isinstance(found, type) and issubclass(found, BaseException), f"no exception {name}"
    return found


def check_class_cell(err: BaseException, cell: str, *modules: Any) -> None:
    """``"`A` (a `B`)"``: an A and a B; ``"`A` (`.x`, `.y`)"``: an A with x and y."""
    for name in names(cell):
        if name.startswith("."):
            assert hasattr(err, name[1:]), f"{type(err).__name__} has no {name}"
        else:
            cls = resolve(name, *modules)
            assert isinstance(err, cls), f"{type(err).__mro__} is not a {name} ({cell})"


def check_retryable(err: BaseException, cell: str) -> None:
    if "(not retryable)" in cell:
        assert getattr(err, "is_retryable", None) is False, f"{type(err).__name__} ({cell})"
    elif "(retryable)" in cell:
        assert getattr(err, "is_retryable", None) is True, f"{type(err).__name__} ({cell})"


def check_requests(server: FakeOpenAIServer, scenario: Scenario, retried: str) -> None:
    sent = _posts(server)
    if scenario.call in ("construct", "bad_param"):
        assert sent == 0, f"{scenario.name}: {sent} request(s) sent; the row says none is"
    elif retried.lower().startswith("yes"):
        assert sent == 1 + RETRIES, (
            f"{scenario.name}: {sent} request(s) with max_retries="
            f"{RETRIES}; the row says it is retried"
        )
    else:
        assert sent == 1, (
            f"{scenario.name}: {sent} request(s) with max_retries={RETRIES}; "
            f"the row says {retried!r}"
        )


def check_status_fields(err: BaseException, scenario: Scenario) -> None:
    """docs/errors.md: an HTTP error carries .code, .status_code, ... and its message starts
    ``Runcrate API error <status> (<code>): <message>``."""
    if scenario.status is None:
        return
    assert getattr(err, "status_code", None) == scenario.status
    assert getattr(err, "code", None) == scenario.code
    assert str(err).startswith(f"Runcrate API error {scenario.status} ({scenario.code}): ")
    assert getattr(err, "error_message", None)
    for attr in ("details", "response", "body"):
        assert hasattr(err, attr), attr


# ---------------------------------------------------------------------- docs/errors.md

ERRORS_ROWS = read_table("docs/errors.md", "Status")
OWN_STATUSES = {int(s) for row in ERRORS_ROWS for s in re.findall(r"\b\d{3}\b", row["Status"])}
CLASS = "Class (`runcrate_integrations.…`)"


def _errors_cases() -> list[Any]:
    cases = []
    for row in ERRORS_ROWS:
        for scenario in scenarios(f"{row['Status']} {row['Typical code']}", OWN_STATUSES):
            kinds = ["chat", "embeddings"] if scenario.embeddings else ["chat"]
            for framework in ("langchain", "llama_index"):
                for kind in kinds:
                    cases.append(
                        pytest.param(
                            row,
                            scenario,
                            f"{framework}-{kind}",
                            id=f"{scenario.name}-{framework}-{kind}",
                        )
                    )
    return cases


@pytest.mark.parametrize(("row", "scenario", "kind"), _errors_cases())
def test_errors_md_row(
    row: dict[str, str],
    scenario: Scenario,
    kind: str,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = provoke(kind, scenario, server, monkeypatch)
    check_class_cell(err, row[CLASS], runcrate_integrations)
    if names(row["openai base"]):
        assert isinstance(err, resolve(names(row["openai base"])[0])), type(err).__mro__
    if names(row["LangChain"]) and kind.startswith("langchain"):
        lc = resolve(names(row["LangChain"])[0], langchain_core.exceptions)
        assert isinstance(err, lc), f"{type(err).__mro__} is not a {lc.__name__}"
        check_retryable(err, row["LangChain"])
    if kind.startswith("llama_index") and isinstance(err, runcrate_integrations.RuncrateError):
        assert type(err).__module__ == "runcrate_integrations.errors", (
            f"LlamaIndex raised {type(err).__module__}.{type(err).__name__}, not the core class"
        )
    # The opening claim: whatever comes from talking to the server is a RuncrateError.
    if scenario.call not in ("construct", "bad_param"):
        assert isinstance(err, runcrate_integrations.RuncrateError), type(err).__mro__
    check_requests(server, scenario, row["Retried?"])
    check_status_fields(err, scenario)


# ---------------------------------------------------------------------- docs/langchain.md

LANGCHAIN_ROWS = read_table("docs/langchain.md", "Error")
LC_OWN = {
    int(s)
    for row in LANGCHAIN_ROWS
    if "other" not in row["Error"]
    for s in re.findall(r"\b\d{3}\b", row["Error"])
}


def _langchain_cases() -> list[Any]:
    cases = []
    for row in LANGCHAIN_ROWS:
        for scenario in scenarios(row["Error"], LC_OWN):
            kinds = ["chat", "embeddings"] if scenario.embeddings else ["chat"]
            cases += [
                pytest.param(row, scenario, f"langchain-{k}", id=f"{scenario.name}-{k}")
                for k in kinds
            ]
    return cases


@pytest.mark.parametrize(("row", "scenario", "kind"), _langchain_cases())
def test_langchain_md_row(
    row: dict[str, str],
    scenario: Scenario,
    kind: str,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import langchain_runcrate

    err = provoke(kind, scenario, server, monkeypatch)
    check_class_cell(err, row["`langchain_runcrate` class"], langchain_runcrate)
    cell = row["langchain-core class"]
    lc = resolve(names(cell)[0], langchain_core.exceptions)
    assert isinstance(err, lc), f"{type(err).__mro__} is not a {lc.__name__}"
    check_retryable(err, cell)


# ---------------------------------------------------------------------- docs/errors.md, Secrets


@pytest.mark.parametrize("kind", ["langchain-chat", "llama_index-chat"])
def test_a_key_echoed_in_an_error_is_blanked(
    kind: str, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario("echo", answer=lambda: error(401, "invalid_api_key", f"Invalid key {KEY}"))
    err = provoke(kind, scenario, server, monkeypatch)
    assert KEY not in str(err)
    assert "***" in str(err)
    assert KEY not in str(getattr(err, "error_message", ""))
    assert KEY not in str(getattr(err, "body", ""))
