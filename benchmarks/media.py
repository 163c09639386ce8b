#!/usr/bin/env python
"""Media: client overhead per call against the raw ``openai`` SDK's ``client.post`` on the
same endpoint, on loopback (``benchmarks/_server.py``, answering at once).

Two endpoints, each timed the way a user gets the result:

* ``POST /images/generations`` (a canned ``b64_json`` answer holding a 64x64 PNG): raw is
  ``client.post(..., cast_to=httpx2.Response)`` then ``json()`` and ``b64decode`` of the image;
  ours are ``MediaClient.generate_image`` (checks, body, the one request loop, pacing, PNG
  sniffing, usage hook), LangChain's ``RuncrateImageGenerationTool.invoke`` and LlamaIndex's
  ``RuncrateToolSpec`` tool ``call`` (each also writes the text for the model and wraps the
  bytes: the artifact, an ``ImageBlock``).
* ``POST /audio/speech`` (16 kB of canned ``audio/mpeg``): raw ``client.post(...).content``;
  ours ``MediaClient.speech``, the LangChain and LlamaIndex speech tools.

Beside them, each framework's own tool wrapped around the raw call (a LangChain ``@tool`` with
``content_and_artifact``, a LlamaIndex ``FunctionTool`` answering blocks): what a hand-written
tool costs, so a tool's row reads against its framework's share of the time.

Contenders run interleaved (round robin), after a warm-up; the figure is the median per call
and its ratio to raw. Usage::

    python benchmarks/media.py [--quick] [--json PATH] [--no-pin]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

try:  # run as a script, benchmarks/ is sys.path[0]
    from bench import API_KEY, Row, _pin, _prepare_environment, _quartiles, running_server
except ImportError:  # imported as benchmarks.media
    from benchmarks.bench import (  # type: ignore[no-redef]  # same names
        API_KEY,
        Row,
        _pin,
        _prepare_environment,
        _quartiles,
        running_server,
    )

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = "a lighthouse at dusk"
TEXT = "Your picture is ready."
RAW = "openai SDK client.post (raw)"


def contenders(base_url: str) -> dict[str, dict[str, Callable[[], object]]]:
    """Per endpoint: name -> a call returning what a user would hold (bytes)."""
    import httpx2
    import openai
    from langchain_core.tools import tool
    from llama_index.core.base.llms.types import AudioBlock, ImageBlock, TextBlock
    from llama_index.core.tools import FunctionTool

    from langchain_runcrate import RuncrateImageGenerationTool, RuncrateTextToSpeechTool
    from llama_index_runcrate import RuncrateToolSpec
    from runcrate_integrations.media import MediaSettings

    raw = openai.OpenAI(api_key=API_KEY, base_url=base_url)
    media = MediaSettings(api_key=API_KEY, base_url=base_url).media
    settings = {"api_key": API_KEY, "base_url": base_url}
    image_tool = RuncrateImageGenerationTool(**settings, extra_body={"response_format": "b64_json"})
    speech_tool = RuncrateTextToSpeechTool(**settings)
    spec_tools = {t.metadata.name: t for t in RuncrateToolSpec(**settings).to_tool_list()}
    image_body = {
        "model": "black-forest-labs/FLUX.1-schnell",
        "prompt": PROMPT,
        "response_format": "b64_json",
    }
    speech_body = {"model": "hexgrad/Kokoro-82M", "input": TEXT}

    def raw_image() -> bytes:
        response = raw.post("/images/generations", body=image_body, cast_to=httpx2.Response)
        return base64.b64decode(response.json()["data"][0]["b64_json"])

    def raw_speech() -> bytes:
        return raw.post("/audio/speech", body=speech_body, cast_to=httpx2.Response).content

    # The frameworks' own tools around the raw call: what a hand-written tool costs, so that
    # a tool row can be read against its framework's share.
    @tool(response_format="content_and_artifact")
    def lc_raw_image(prompt: str) -> tuple[str, bytes]:
        """Draw."""
        data = raw_image()
        return f"made {len(data)} bytes", data

    @tool(response_format="content_and_artifact")
    def lc_raw_speech(text: str) -> tuple[str, bytes]:
        """Speak."""
        data = raw_speech()
        return f"made {len(data)} bytes", data

    li_raw_image = FunctionTool.from_defaults(
        fn=lambda prompt: [TextBlock(text="made"), ImageBlock(image=raw_image())],
        name="draw",
        description="Draw.",
    )
    li_raw_speech = FunctionTool.from_defaults(
        fn=lambda text: [TextBlock(text="made"), AudioBlock(audio=raw_speech(), format="mp3")],
        name="speak",
        description="Speak.",
    )

    return {
        "POST /images/generations": {
            RAW: raw_image,
            "MediaClient.generate_image": lambda: (
                media.generate_image(PROMPT, response_format="b64_json").image.data
            ),
            "LangChain @tool around raw": lambda: (
                lc_raw_image.invoke(
                    {
                        "type": "tool_call",
                        "id": "1",
                        "name": "lc_raw_image",
                        "args": {"prompt": PROMPT},
                    }
                ).artifact
            ),
            "RuncrateImageGenerationTool": lambda: image_tool.invoke(
                {
                    "type": "tool_call",
                    "id": "1",
                    "name": "generate_image",
                    "args": {"prompt": PROMPT},
                }
            ).artifact["data"],
            "LlamaIndex FunctionTool around raw": lambda: (
                li_raw_image.call(prompt=PROMPT).raw_output
            ),
            "RuncrateToolSpec generate_image": lambda: (
                spec_tools["generate_image"].call(prompt=PROMPT).raw_output
            ),
        },
        "POST /audio/speech": {
            RAW: raw_speech,
            "MediaClient.speech": lambda: media.speech(TEXT).data,
            "LangChain @tool around raw": lambda: (
                lc_raw_speech.invoke(
                    {
                        "type": "tool_call",
                        "id": "1",
                        "name": "lc_raw_speech",
                        "args": {"text": TEXT},
                    }
                ).artifact
            ),
            "RuncrateTextToSpeechTool": lambda: speech_tool.invoke(
                {"type": "tool_call", "id": "1", "name": "text_to_speech", "args": {"text": TEXT}}
            ).artifact["data"],
            "LlamaIndex FunctionTool around raw": lambda: li_raw_speech.call(text=TEXT).raw_output,
            "RuncrateToolSpec text_to_speech": lambda: (
                spec_tools["text_to_speech"].call(text=TEXT).raw_output
            ),
        },
    }


def measure(
    calls: dict[str, Callable[[], object]], warmup: int, rounds: int, budget: float
) -> list[Row]:
    """Median wall time per call, contenders interleaved; ratios to the raw row."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    gc.collect()
    start = time.perf_counter()
    rnd = 0
    while rnd < rounds and (rnd < 10 or time.perf_counter() - start < budget):
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter_ns()
            calls[name]()
            samples[name].append((time.perf_counter_ns() - t0) / 1e6)
        rnd += 1
    rows = []
    for name, xs in samples.items():
        row = Row(name, "raw" if name == RAW else "ours")
        row.p25, row.value, row.p75 = _quartiles(xs)
        row.samples = len(xs)
        rows.append(row)
    raw = rows[0].value
    for row in rows:
        row.ratio = row.value / raw if raw and row.value else None
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (~10 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    args = parser.parse_args(argv)
    _prepare_environment()
    warmup, rounds, budget = (10, 150, 3.0) if args.quick else (30, 600, 10.0)
    results: dict[str, Any] = {}
    with running_server(pin=not args.no_pin) as server:
        if not args.no_pin:
            import os

            _pin(os.getpid(), server=False)
        for endpoint, calls in contenders(server.base_url).items():
            rows = measure(calls, warmup, rounds, budget)
            results[endpoint] = [asdict(r) for r in rows]
            print(f"\n{endpoint}: median ms per call (loopback, instant server)")
            print(f"  {'contender':36} {'median':>8} {'p25':>8} {'p75':>8} {'n':>5} {'x raw':>7}")
            for r in rows:
                ratio = f"{r.ratio:.2f}x" if r.ratio else "-"
                print(
                    f"  {r.name:36} {r.value:8.3f} {r.p25:8.3f} {r.p75:8.3f} {r.samples:5d} "
                    f"{ratio:>7}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
