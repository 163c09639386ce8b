"""Offline token counting: the estimate, per-model calibration and the process registry."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from runcrate_integrations import tokens
from runcrate_integrations.tokens import (
    IMAGE_TOKENS,
    TokenCounter,
    counter_for,
    estimate_text,
)

PROSE = (
    "The committee met on Thursday to discuss the proposed changes to the community garden. "
    "After a long debate, members agreed to extend the watering schedule during the summer "
    "months and to ask the council for permission to install a small greenhouse."
)
CODE = """\
def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except (TimeoutError, ConnectionError) as exc:
            last = exc
    raise RuntimeError(f"gave up after {attempts}: {last!r}")
"""
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
Messages = list[dict[str, Any]]


def user(text: str) -> Messages:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------- estimate


def test_empty_inputs() -> None:
    counter = TokenCounter()
    assert estimate_text("") == 0.0
    assert counter.count_text("") == 0
    assert counter.count_messages([]) == 0
    assert counter.count_messages([], None) == 0
    # a message with no text still costs its template overhead
    assert counter.count_messages([{"role": "user", "content": ""}]) > 0
    assert counter.count_messages([{"role": "assistant", "content": None}]) > 0


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("hello", 0.9, 2),
        ("The quick brown fox jumps over the lazy dog.", 8, 12),  # 10 in GPT-4/Qwen2
        ("1234567890", 8, 11),  # digits are split one by one (Qwen2, Llama 3: 1-3)
        ("x" * 40, 3, 40),  # one long unusual run: split, but not per character
        ("\n" + " " * 16 + "return x", 3, 6),  # an indentation run is one piece
        ("机器学习是人工智能的一个重要分支", 8, 20),  # CJK: about one token per character
        ("🎉🚀✨😀", 2, 10),
        ("a" * 100_000, 20_000, 80_000),  # spans several chunks
    ],
)
def test_estimates_in_sane_ranges(text: str, low: float, high: float) -> None:
    assert low <= estimate_text(text) <= high


def test_code_is_denser_than_prose() -> None:
    prose_rate = estimate_text(PROSE) / len(PROSE)
    code_rate = estimate_text(CODE) / len(CODE)
    assert code_rate > prose_rate * 1.05
    # and neither is plain chars / 4
    assert 0.15 < prose_rate < 0.25
    assert 0.2 < code_rate < 0.4


def test_estimate_grows_with_the_text() -> None:
    text = (PROSE + "\n\n" + CODE) * 3
    previous = 0.0
    for end in range(1, len(text) + 1):
        value = estimate_text(text[:end])
        # one more character can merge two pieces (a space joins the next word) but never
        # takes more than about one token away
        assert value >= previous - 1.01
        previous = value
    assert estimate_text(text * 2) > 1.9 * estimate_text(text)


def test_estimate_is_about_additive() -> None:
    a, b = estimate_text(PROSE), estimate_text(CODE)
    assert abs(estimate_text(PROSE + "\n\n" + CODE) - (a + b)) <= 2


def test_long_text_is_counted_in_chunks_consistently() -> None:
    text = (PROSE + "\n" + CODE) * 40  # > 4096 bytes
    assert len(text) > 3 * tokens._CHUNK
    assert estimate_text(text) == pytest.approx(40 * estimate_text(PROSE + "\n" + CODE), rel=0.01)


def test_cache_does_not_change_results() -> None:
    texts = [f"{PROSE} ({i})" for i in range(50)]
    cold = []
    for text in texts:
        tokens._cache.clear()
        cold.append(estimate_text(text))
    assert [estimate_text(t) for t in texts] == cold
    assert [tokens._estimate(t) for t in texts] == cold


# ---------------------------------------------------------------------------- messages


def test_tools_tool_calls_images_and_names_are_counted() -> None:
    counter = TokenCounter()
    base = user("What's the weather in Paris?")
    assert counter.count_messages(base, [TOOL]) > counter.count_messages(base) + 20
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'}
    empty_call = {"role": "assistant", "content": None}
    with_calls = counter.count_messages([*base, call, result])
    without = counter.count_messages([*base, empty_call, result])
    assert with_calls >= without + 8  # {"name": "get_weather", "arguments": {...}}
    # dict arguments (some clients send them parsed) count about the same
    parsed = json.loads(json.dumps(call))
    parsed["tool_calls"][0]["function"]["arguments"] = {"city": "Paris"}
    assert abs(counter.count_messages([*base, parsed, result]) - with_calls) <= 2

    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    text_part = {"type": "text", "text": "What's the weather in Paris?"}
    parts = [{"role": "user", "content": [text_part, image, image]}]
    assert counter.count_messages(parts) == counter.count_messages(base) + 2 * IMAGE_TOKENS
    named = [{"role": "user", "name": "alice_from_accounting", "content": base[0]["content"]}]
    assert counter.count_messages(named) > counter.count_messages(base)


def test_tools_estimate_is_memoized_per_list_object() -> None:
    counter = TokenCounter()
    tools_a = [TOOL]
    first = counter.count_messages(user("hi"), tools_a)
    assert counter.count_messages(user("hi"), tools_a) == first
    bigger = [TOOL, {**TOOL, "function": {**TOOL["function"], "name": "get_forecast"}}]
    assert counter.count_messages(user("hi"), bigger) > first
    tools_a.append(bigger[1])  # grown in place: re-measured
    assert counter.count_messages(user("hi"), tools_a) == counter.count_messages(user("hi"), bigger)


def test_thousand_messages_are_counted_consistently() -> None:
    # Correctness only (speed is measured by benchmarks/tokens.py).
    rng = random.Random(3)
    words = (PROSE + " " + CODE).split()
    messages: Messages = [
        {
            "role": ("user", "assistant")[i % 2],
            "content": " ".join(rng.choice(words) for _ in range(rng.randint(1, 120))),
        }
        for i in range(1000)
    ]
    counter = TokenCounter()
    tokens._cache.clear()
    cold = counter.count_messages(messages)
    assert counter.count_messages(messages) == cold
    by_message = sum(estimate_text(m["content"]) for m in messages)
    a, b, c, d, _ = tokens._PRIOR_MEAN
    assert cold == round(a * by_message + b + c * 1000 + d)
    assert counter.count_messages(messages[:500]) < cold


# ---------------------------------------------------------------------------- calibration

TRUTH = (1.3, 7.0, 4.0, 21.0, 90.0)  # a, b, c, d, e of a made-up server


def truth(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    params: Sequence[float] = TRUTH,
) -> int:
    z, images = tokens._request_features(messages, tools)
    return round(sum(p * v for p, v in zip(params, z, strict=True)) + IMAGE_TOKENS * images)


def request(rng: random.Random, size: int) -> tuple[Messages, list[dict[str, Any]] | None]:
    text = (PROSE + " " + CODE) * (size // 80 + 1)
    start = rng.randrange(0, len(PROSE))
    messages: Messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": "You are terse."})
    for i in range(rng.randint(1, 6)):
        piece = text[start + i * 7 : start + i * 7 + max(1, size // 2)]
        messages.append({"role": ("user", "assistant")[i % 2], "content": piece})
    return messages, ([TOOL] if rng.random() < 0.3 else None)


def held_out_errors(counter: TokenCounter, params: Sequence[float] = TRUTH) -> list[float]:
    rng = random.Random(99)
    out = []
    for size in (5, 40, 200, 1000, 4000, 15000) * 4:
        messages, tools = request(rng, size)
        real = truth(messages, tools, params)
        out.append(counter.count_messages(messages, tools) / real - 1)
    return out


def test_calibration_converges_on_a_linear_truth() -> None:
    counter = TokenCounter()
    assert not counter.calibrated
    before = held_out_errors(counter)
    # three calls of varied sizes and shapes, as an agent makes them
    for messages, tools in (
        (user("What is the capital of Portugal?"), None),
        (
            [
                {"role": "system", "content": "You are terse."},
                *user(PROSE * 2),
                {"role": "assistant", "content": CODE},
                *user("and then?"),
            ],
            [TOOL],
        ),
        ([{"role": "system", "content": "Review this code."}, *user(CODE * 12)], None),
    ):
        counter.observe(messages, tools, truth(messages, tools))
    assert counter.calibrated and counter.observations == 3
    after3 = held_out_errors(counter)
    mean_abs = sum(map(abs, after3)) / len(after3)
    assert mean_abs < sum(map(abs, before)) / len(before) / 3
    assert mean_abs < 0.05
    assert max(map(abs, after3)) < 0.35  # a 6-message, 5-token request: overheads only
    rng = random.Random(1)
    for _ in range(40):
        messages, tools = request(rng, rng.choice((10, 100, 1000, 5000)))
        counter.observe(messages, tools, truth(messages, tools))
    assert max(map(abs, held_out_errors(counter))) < 0.03  # 1 token of rounding on ~40
    a, *_, e = counter._params()
    assert a == pytest.approx(1.3, rel=0.02)
    assert e == pytest.approx(90, abs=10)
    assert counter.count_text(PROSE) == round(a * estimate_text(PROSE))


def test_one_observation_already_helps() -> None:
    counter = TokenCounter()
    messages = user(PROSE * 8)
    before = abs(counter.count_messages(messages) / truth(messages, None) - 1)
    counter.observe(user(CODE * 10), None, truth(user(CODE * 10), None))
    after = abs(counter.count_messages(messages) / truth(messages, None) - 1)
    assert after < before / 2


def test_an_outlier_barely_moves_the_fit() -> None:
    rng = random.Random(2)
    counter = TokenCounter()
    for _ in range(12):
        messages, tools = request(rng, rng.choice((20, 300, 3000)))
        counter.observe(messages, tools, truth(messages, tools))
    reference = held_out_errors(counter)
    messages, tools = request(rng, 800)
    counter.observe(messages, tools, 5 * truth(messages, tools))  # e.g. a miscounting proxy
    moved = [abs(x - y) for x, y in zip(held_out_errors(counter), reference, strict=True)]
    assert max(moved) < 0.03


def test_recent_observations_win_when_the_model_changes() -> None:
    rng = random.Random(4)
    counter = TokenCounter()
    new = (1.0, 3.0, 5.0, 0.0, 40.0)
    for params in (TRUTH, new):
        for _ in range(80):
            messages, tools = request(rng, rng.choice((20, 300, 3000)))
            counter.observe(messages, tools, truth(messages, tools, params))
    assert max(map(abs, held_out_errors(counter, new))) < 0.03


def test_observations_without_usage_are_ignored() -> None:
    counter = TokenCounter()
    for bad in (0, -3, None, 12.5):
        counter.observe(user("hi"), None, bad)  # type: ignore[arg-type]
    counter.observe([], None, 40)
    assert not counter.calibrated
    assert counter._params() == tokens._PRIOR_MEAN


def test_params_stay_in_sane_ranges() -> None:
    counter = TokenCounter()
    for _ in range(10):
        counter.observe(user(PROSE), None, 1)  # absurdly low
    params = counter._params()
    assert all(
        low <= p <= high for p, low, high in zip(params, tokens._LOWER, tokens._UPPER, strict=True)
    )
    assert counter.count_messages(user(PROSE)) >= 1


def test_concurrent_observe_and_count() -> None:
    counter = TokenCounter()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(150):
                messages, tools = request(rng, rng.choice((20, 300, 3000)))
                counter.observe(messages, tools, truth(messages, tools))
                counter.count_messages(messages, tools)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert counter.observations == 8 * 150
    assert max(map(abs, held_out_errors(counter))) < 0.03


# ---------------------------------------------------------------------------- registry


def test_registry_shares_and_is_bounded() -> None:
    a = counter_for("http://host/v1/", "model-a")
    assert counter_for("http://host/v1", "model-a") is a
    assert counter_for("http://host/v1", "model-b") is not a
    assert counter_for("http://other/v1", "model-a") is not a
    for i in range(tokens._REGISTRY_MAX + 50):
        counter_for("http://host/v1", f"filler-{i}")
    assert len(tokens._registry) == tokens._REGISTRY_MAX
    assert counter_for("http://host/v1", "model-a") is not a  # evicted, fresh again


def test_registry_is_thread_safe() -> None:
    seen: list[TokenCounter] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(200):
            counter = counter_for("http://race/v1", f"m{i % 10}")
            with lock:
                seen.append(counter)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 10
