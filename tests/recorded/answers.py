"""What the server sent, read back from the test's own cassette.

A recorded test checks what the adapter did with the server's answer, not whether a small model
chose well: it compares the adapter's result with :func:`answers` (the exchanges in the
cassette, parsed independently of the adapter), so a re-recording where the model answers
differently still passes as long as the adapter handled that answer correctly.

A test also needs a cassette that shows what it is about (two parallel calls, a tool call at
all). :func:`needs` says so: while recording (``scripts/record``) an answer without that shape
fails the test, and the script records it again; in replay it is not checked, since the cassette
is then whatever a passing recording wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests import vcr_support


@dataclass
class Call:
    """One tool call as the server sent it (a stream's fragments joined)."""

    id: str
    name: str
    arguments: str
    fragments: int = 1

    @property
    def args(self) -> dict[str, Any] | None:
        """The arguments as a dict; ``{}`` when empty; None when they are not a JSON object."""
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Answer:
    """One recorded exchange: the request body sent and the first choice answered."""

    request: dict[str, Any]
    content: str | None = None
    finish_reason: str | None = None
    tool_calls: list[Call] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    streamed: bool = False


# The facts of the long logistics conversation both frameworks' recorded tests hold (their
# cassettes were recorded with exactly these).
CITIES = (
    "Lyon",
    "Porto",
    "Gdansk",
    "Tampere",
    "Bilbao",
    "Graz",
    "Utrecht",
    "Aarhus",
    "Brno",
    "Turin",
    "Ghent",
)
GOODS = (
    "copper wire",
    "olive oil",
    "ceramic tiles",
    "bicycle tyres",
    "rye flour",
    "wool blankets",
    "glass jars",
)
ROADS = ("dry", "icy", "flooded", "busy", "clear")


def _text(body: Any) -> str:
    if isinstance(body, dict):  # a response: {"string": ...}
        body = body.get("string")
    if isinstance(body, bytes):
        return body.decode("utf-8")
    return body or ""


def _from_completion(request: dict[str, Any], data: dict[str, Any]) -> Answer:
    choice = data["choices"][0]
    message = choice.get("message") or {}
    calls = [
        Call(str(c.get("id") or ""), c["function"]["name"], c["function"].get("arguments") or "")
        for c in message.get("tool_calls") or ()
    ]
    return Answer(
        request, message.get("content"), choice.get("finish_reason"), calls, data.get("usage")
    )


def _from_stream(request: dict[str, Any], text: str) -> Answer:
    answer = Answer(request, streamed=True)
    calls: dict[int, Call] = {}
    for line in text.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        answer.usage = chunk.get("usage") or answer.usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                answer.content = (answer.content or "") + delta["content"]
            for part in delta.get("tool_calls") or ():
                fn = part.get("function") or {}
                call = calls.get(part["index"])
                if call is None:
                    calls[part["index"]] = Call(
                        part.get("id") or "", fn.get("name") or "", fn.get("arguments") or ""
                    )
                else:
                    call.id = call.id or part.get("id") or ""
                    call.name += fn.get("name") or ""
                    call.arguments += fn.get("arguments") or ""
                    call.fragments += 1
            answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
    answer.tool_calls = [calls[i] for i in sorted(calls)]
    return answer


def answers(cassette: Any) -> list[Answer]:
    """The chat exchanges of the test so far (``cassette``: pytest-recording's ``vcr`` fixture).

    While recording, the exchanges written so far; in replay, the recorded ones played so far.
    """
    out = []
    for i, (request, response) in enumerate(cassette.data):
        if not vcr_support.recording() and not cassette.play_counts[i]:
            continue
        if not request.path.endswith("/chat/completions"):
            continue
        body = json.loads(_text(request.body))
        text = _text(response["body"])
        out.append(
            _from_stream(body, text)
            if body.get("stream")
            else _from_completion(body, json.loads(text))
        )
    return out


def last(cassette: Any) -> Answer:
    """The test's latest chat exchange."""
    found = answers(cassette)
    assert found, "no chat exchange in the cassette"
    return found[-1]


def needs(shape: object, what: str) -> None:
    """While recording, fail unless ``shape`` holds, so ``scripts/record`` records again.

    ``what`` describes the answer the test needs (the model's luck, not the adapter's doing).
    """
    if vcr_support.recording() and not shape:
        raise AssertionError(
            f"the server's answer does not show what this test is about: "
            f"{what}; scripts/record retries it"
        )


def catalog_windows(cassette: Any) -> list[int]:
    """``meta.n_ctx`` / ``context_length`` of every ``GET /models`` answer the test used."""
    found = []
    for i, (request, response) in enumerate(cassette.data):
        if request.method != "GET" or not request.path.endswith("/models"):
            continue
        if not vcr_support.recording() and not cassette.play_counts[i]:
            continue
        body = response["body"]["string"]
        data = json.loads(body.decode() if isinstance(body, bytes) else body)
        for entry in data["data"]:
            found.append(entry.get("context_length") or entry["meta"]["n_ctx"])
    return found
