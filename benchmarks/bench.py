#!/usr/bin/env python
"""Overhead of ChatRuncrate / RuncrateLLM against the raw ``openai`` SDK.

One run measures, against a zero-latency local server (``_server.py``, run in
its own process):

1. median latency of one non-streaming call and of one fully consumed
   200-chunk stream, for the raw SDK, our two adapters and (when importable)
   ``langchain_openai.ChatOpenAI`` / ``llama_index.llms.openai_like.OpenAILike``;
2. throughput of 200 concurrent async calls;
3. import time of each package in a fresh interpreter;
4. construction time, and how many connection pools 1,000 instances use.

Usage::

    python benchmarks/bench.py [--quick] [--json PATH] [--anchor-python PATH]

``--anchor-python`` runs the anchors (ChatOpenAI, OpenAILike) in another
interpreter; needed because llama-index-llms-openai pins ``openai<3`` while
this package uses openai 3.x. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

try:  # run as a script, benchmarks/ is sys.path[0]
    import _server
except ImportError:  # imported as benchmarks.bench
    from benchmarks import _server  # type: ignore[no-redef]  # same module, other name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    # Lets the benchmark find langchain_runcrate & co. from a plain checkout.
    sys.path.insert(0, str(ROOT))

MODEL = _server.MODEL
API_KEY = "sk-bench-not-a-real-key"
PROMPT = "Say hello."
STREAM_CHUNKS = _server.STREAM_CHUNKS
CONCURRENCY = 200
POOL_INSTANCES = 1000
# Seconds a full run aims to stay under; the import phase drops its last pass
# if it would overrun (the other phases have their own caps in Plan).
TIME_TARGET = 110.0
# The first concurrent round opens CONCURRENCY connections; the second still
# runs slow on some httpx versions. Neither is steady state.
ASYNC_WARMUP_ROUNDS = 2

# Names used in tables, JSON and targets.
RAW = "openai SDK (raw)"
CHAT_RUNCRATE = "ChatRuncrate"
RUNCRATE_LLM = "RuncrateLLM"
CHAT_OPENAI = "ChatOpenAI"
OPENAI_LIKE = "OpenAILike"
# Our adapters again, each call inside its own track_usage(prices=...) block: the cost of
# counting (a hold, the answer's usage, the price) must not show against the raw SDK.
TRACKED = " (tracked)"
TRACK_PRICES = {MODEL: {"input": 0.5, "output": 1.5}}

# Where the pool probe looks for each instance's clients, in order: an
# attribute, or a zero-argument method when the name ends in "()". Whatever is
# found is followed through ``._client`` until an httpx/httpx2 client turns up,
# so an ``openai.OpenAI`` and a resource like ``client.chat.completions`` both
# work. The row's notes (and JSON ``*_via``) say which path matched.
# ChatRuncrate exposes ``.client`` / ``.async_client`` (openai clients whose
# ``._client`` is the httpx2 client); RuncrateLLM has ``_client()`` / ``_aclient()``.
# Put new names first if they change.
SYNC_CLIENT_PATHS = ("client", "_client()", "root_client", "_get_client()", "_client")
ASYNC_CLIENT_PATHS = ("async_client", "_aclient()", "root_async_client", "_get_aclient()")

# Variables that would make LangChain trace to a remote service or send the
# loopback traffic through a proxy; either would measure something else.
_TRACING_VARS = ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING")


@dataclass(frozen=True)
class Plan:
    """Repetition counts and per-phase time caps (seconds)."""

    call_warmup: int
    call_rounds: int
    call_budget: float
    stream_warmup: int
    stream_rounds: int
    stream_budget: float
    async_rounds: int
    async_budget: float
    import_reps: int
    construct_budget: float

    @classmethod
    def for_mode(cls, quick: bool, anchors_only: bool = False) -> Plan:
        if quick:
            return cls(15, 200, 3.0, 3, 20, 4.0, 3, 5.0, 1, 1.0)
        if anchors_only:  # the anchors carry no target: keep the whole run under two minutes
            return cls(30, 400, 5.0, 4, 40, 6.0, 9, 7.0, 3, 1.0)
        return cls(40, 700, 8.0, 5, 60, 10.0, 12, 14.0, 5, 1.5)


# -------------------- server


class Server:
    """The zero-latency server subprocess; ``request_count`` reads its stats."""

    def __init__(self, proc: subprocess.Popen[str] | None, base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        host_port = base_url.split("://", 1)[1].split("/", 1)[0]
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)

    def stats(self) -> dict[str, int]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            conn.request("GET", "/_stats")
            data: dict[str, int] = json.loads(conn.getresponse().read())
            return data
        finally:
            conn.close()

    def request_count(self) -> int:
        return sum(self.stats().values())


@contextmanager
def running_server(pin: bool) -> Iterator[Server]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), "--chunks", str(STREAM_CHUNKS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"benchmark server did not start (said {line!r})")
        if pin:
            _pin(proc.pid, server=True)
        yield Server(proc, f"http://127.0.0.1:{int(line.split()[1])}/v1")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pin(pid: int, server: bool) -> None:
    """Server on the last CPU, benchmark on the first: no fight for a core."""
    if not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    os.sched_setaffinity(pid, {cpus[-1]} if server else {cpus[0]})


# -------------------- contenders


@dataclass
class Contender:
    name: str
    kind: str  # "raw", "ours" or "anchor"
    call: Callable[[], object] | None = None
    stream: Callable[[], int] | None = None  # returns the number of chunks seen
    acall: Callable[[], Awaitable[object]] | None = None
    unavailable: str | None = None


def _unavailable(name: str, kind: str, exc: BaseException) -> Contender:
    if isinstance(exc, ImportError):
        reason = f"not available ({exc})"
    else:
        reason = f"construction failed ({type(exc).__name__}: {exc})"
    return Contender(name, kind, unavailable=reason)


def _raw_messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPT}]


def build_raw(base_url: str) -> Contender:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url)
    aclient = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url)
    messages: Any = _raw_messages()

    def call() -> object:
        return (
            client.chat.completions.create(model=MODEL, messages=messages)
            .choices[0]
            .message.content
        )

    def stream() -> int:
        parts: list[str] = []
        n = 0
        for chunk in client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        ):
            n += 1
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
        _text = "".join(parts)  # what a caller does with a stream; the frameworks do it too
        return n

    async def acall() -> object:
        resp = await aclient.chat.completions.create(model=MODEL, messages=messages)
        return resp.choices[0].message.content

    return Contender(RAW, "raw", call, stream, acall)


def _langchain_contender(name: str, kind: str, llm: Any) -> Contender:
    def call() -> object:
        return llm.invoke(PROMPT).content

    def stream() -> int:
        parts = [chunk.content for chunk in llm.stream(PROMPT)]
        return len(parts)

    async def acall() -> object:
        return (await llm.ainvoke(PROMPT)).content

    return Contender(name, kind, call, stream, acall)


def _llamaindex_contender(name: str, kind: str, llm: Any) -> Contender:
    from llama_index.core.llms import ChatMessage

    messages = [ChatMessage(role="user", content=PROMPT)]

    def call() -> object:
        return llm.chat(messages).message.content

    def stream() -> int:
        parts = [resp.delta for resp in llm.stream_chat(messages)]
        return len(parts)

    async def acall() -> object:
        return (await llm.achat(messages)).message.content

    return Contender(name, kind, call, stream, acall)


# Constructor arguments as a user passes them (plain str key). Passed as **kwargs
# because the classes' type hints say SecretStr while pydantic takes a str.
def _settings(base_url: str, url_name: str = "base_url") -> dict[str, Any]:
    return {"model": MODEL, "api_key": API_KEY, url_name: base_url}


def make_chat_runcrate(base_url: str) -> Any:
    from langchain_runcrate import ChatRuncrate

    return ChatRuncrate(**_settings(base_url))


def make_runcrate_llm(base_url: str) -> Any:
    from llama_index_runcrate import RuncrateLLM

    return RuncrateLLM(**_settings(base_url))


def make_chat_openai(base_url: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(**_settings(base_url))


def make_openai_like(base_url: str) -> Any:
    from llama_index.llms.openai_like import OpenAILike

    # is_chat_model=True, or OpenAILike sends chat through /completions.
    return OpenAILike(**_settings(base_url, "api_base"), is_chat_model=True)


FACTORIES: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    # name: (kind, framework, factory)
    CHAT_RUNCRATE: ("ours", "langchain", make_chat_runcrate),
    RUNCRATE_LLM: ("ours", "llamaindex", make_runcrate_llm),
    CHAT_OPENAI: ("anchor", "langchain", make_chat_openai),
    OPENAI_LIKE: ("anchor", "llamaindex", make_openai_like),
}


def build_contenders(base_url: str, kinds: Sequence[str]) -> list[Contender]:
    contenders = [build_raw(base_url)]
    for name, (kind, framework, factory) in FACTORIES.items():
        if kind not in kinds:
            continue
        try:
            llm = factory(base_url)
        except Exception as exc:  # report and go on: one broken contender must not end the run
            contenders.append(_unavailable(name, kind, exc))
            continue
        wrap = _langchain_contender if framework == "langchain" else _llamaindex_contender
        contenders.append(wrap(name, kind, llm))
        if kind == "ours":
            contenders.append(tracked(wrap(name + TRACKED, kind, llm)))
    return contenders


def tracked(contender: Contender) -> Contender:
    """``contender`` with every call in a fresh ``track_usage`` block (enter and exit timed
    too), checking that the call was counted."""
    from runcrate_integrations import track_usage

    call_fn, stream_fn, acall_fn = contender.call, contender.stream, contender.acall
    assert call_fn is not None and stream_fn is not None and acall_fn is not None

    def counted(usage: Any) -> None:
        if usage.requests != 1 or usage.cost is None:
            raise RuntimeError(f"{contender.name}: the call was not counted ({usage!r})")

    def call() -> object:
        with track_usage(prices=TRACK_PRICES) as usage:
            result = call_fn()
        counted(usage)
        return result

    def stream() -> int:
        with track_usage(prices=TRACK_PRICES) as usage:
            n = stream_fn()
        counted(usage)
        return n

    async def acall() -> object:
        with track_usage(prices=TRACK_PRICES) as usage:
            result = await acall_fn()
        counted(usage)
        return result

    return Contender(contender.name, contender.kind, call, stream, acall)


# -------------------- measurement


@dataclass
class Row:
    """One contender's figure in one phase."""

    name: str
    kind: str
    # ms for latency and imports, calls/s for throughput, us for construction
    value: float | None = None
    p25: float | None = None
    p75: float | None = None
    samples: int = 0
    ratio: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 4:
        med = statistics.median(xs)
        return min(xs), med, max(xs)
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, q2, q3


def measure_sync(
    contenders: list[Contender], op: str, warmup: int, rounds: int, budget: float, server: Server
) -> list[Row]:
    """Median wall time of ``op`` ("call" or "stream"), contenders interleaved."""
    rows: dict[str, Row] = {}
    active: list[tuple[Contender, Callable[[], object]]] = []
    for c in contenders:
        row = rows[c.name] = Row(c.name, c.kind)
        fn = getattr(c, op)
        if c.unavailable or fn is None:
            row.note = c.unavailable or "not measured"
            continue
        before = server.request_count()
        try:
            seen = [fn() for _ in range(warmup)]
        except Exception as exc:  # a contender that errors is reported, not fatal
            row.note = f"failed: {type(exc).__name__}: {exc}"[:160]
            continue
        row.extra["http_requests_per_call"] = round((server.request_count() - before) / warmup, 3)
        if op == "call" and seen[-1] != _server.COMPLETION_TEXT:
            row.note = f"unexpected reply {seen[-1]!r:.60}"
        if op == "stream":
            row.extra["chunks_seen"] = seen[-1]
            if isinstance(seen[-1], int) and seen[-1] < STREAM_CHUNKS:
                row.note = f"only {seen[-1]} chunks seen: not streaming?"
        active.append((c, fn))

    samples: dict[str, list[float]] = {c.name: [] for c, _ in active}
    gc.collect()
    start = time.perf_counter()
    rnd = 0
    while active and rnd < rounds and (rnd < 10 or time.perf_counter() - start < budget):
        k = rnd % len(active)
        for c, fn in active[k:] + active[:k]:
            t0 = time.perf_counter_ns()
            fn()
            samples[c.name].append((time.perf_counter_ns() - t0) / 1e6)
        rnd += 1
    for name, xs in samples.items():
        rows[name].p25, rows[name].value, rows[name].p75 = _quartiles(xs)
        rows[name].samples = len(xs)
    _ratios(list(rows.values()))
    return list(rows.values())


def measure_async(contenders: list[Contender], rounds: int, budget: float) -> list[Row]:
    """Throughput (calls/s) of CONCURRENCY concurrent calls, contenders interleaved."""
    return asyncio.run(_measure_async(contenders, rounds, budget))


async def _measure_async(contenders: list[Contender], rounds: int, budget: float) -> list[Row]:
    rows: dict[str, Row] = {}
    active: dict[str, Callable[[], Awaitable[object]]] = {}
    for c in contenders:
        row = rows[c.name] = Row(c.name, c.kind)
        if c.unavailable or c.acall is None:
            row.note = c.unavailable or "not measured"
        else:
            active[c.name] = c.acall

    async def batch(name: str) -> float | None:
        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(active[name]() for _ in range(CONCURRENCY)))
        except Exception as exc:  # a contender that errors is reported, not fatal
            rows[name].note = f"failed: {type(exc).__name__}: {exc}"[:160]
            del active[name]
            return None
        return CONCURRENCY / (time.perf_counter() - t0)

    # Warm-up is interleaved too: a pool left idle for long (httpcore expires
    # keep-alive connections after 5 s) would make the next round reconnect.
    # The time cap counts from here: some pools are slow to warm up.
    start = time.perf_counter()
    for i in range(ASYNC_WARMUP_ROUNDS):
        if i > 0 and time.perf_counter() - start > budget / 2:
            break
        for name in list(active):
            await batch(name)
    samples: dict[str, list[float]] = {name: [] for name in active}
    gc.collect()
    rnd = 0
    while active and rnd < rounds and (rnd < 3 or time.perf_counter() - start < budget):
        names = list(active)
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            throughput = await batch(name)
            if throughput is not None:
                samples[name].append(throughput)
        rnd += 1
    for name, xs in samples.items():
        if name in active and xs:
            rows[name].p25, rows[name].value, rows[name].p75 = _quartiles(xs)
            rows[name].samples = len(xs)
    _ratios(list(rows.values()))
    return list(rows.values())


def _ratios(rows: list[Row]) -> None:
    """value / raw value: above 1 is slower for latency, below 1 is slower for throughput."""
    raw = next((r for r in rows if r.kind == "raw" and r.value), None)
    for r in rows:
        if raw is not None and raw.value and r.value is not None:
            r.ratio = r.value / raw.value


# -------------------- construction & pools


def _is_http_client(obj: object) -> bool:
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2") for cls in type(obj).__mro__)


def _resolve(obj: object, path: str) -> object | None:
    try:
        if path.endswith("()"):
            method = getattr(obj, path[:-2], None)
            return method() if callable(method) else None
        return getattr(obj, path, None)
    except Exception:  # a probe must never end the run
        return None


def find_http_client(obj: object, paths: Sequence[str]) -> tuple[object | None, str]:
    """The httpx/httpx2 client behind ``obj``, and the attribute path that led there."""
    for path in paths:
        node = _resolve(obj, path)
        trail = [path]
        for _ in range(4):  # openai resource -> OpenAI -> httpx client
            if node is None:
                break
            if _is_http_client(node):
                return node, ".".join(trail)
            node = getattr(node, "_client", None)
            trail.append("_client")
    return None, ""


def measure_construction(base_url: str, kinds: Sequence[str], budget: float) -> list[Row]:
    rows: list[Row] = []
    makers: list[tuple[str, str, Callable[[str], Any], int]] = [(RAW, "raw", _make_raw_client, 20)]
    for name, (kind, _fw, factory) in FACTORIES.items():
        if kind in kinds:
            makers.append((name, kind, factory, POOL_INSTANCES))
    for name, kind, factory, count in makers:
        row = Row(name, kind)
        rows.append(row)
        instances: list[Any] = []
        times: list[float] = []
        pooled_before = _pooled_client_count() if kind == "ours" else None
        try:
            factory(base_url)  # first construction pays one-off imports and caches
            start = time.perf_counter()
            for _ in range(count):
                t0 = time.perf_counter_ns()
                instances.append(factory(base_url))
                times.append((time.perf_counter_ns() - t0) / 1e3)
                if time.perf_counter() - start > budget:
                    break
        except Exception as exc:
            row.note = _unavailable(name, kind, exc).unavailable or ""
            continue
        row.p25, row.value, row.p75 = _quartiles(times)
        row.samples = len(times)
        row.extra.update(_count_pools(instances, budget))
        pooled_after = _pooled_client_count() if kind == "ours" else None
        if pooled_before is not None and pooled_after is not None:
            # Shared sync clients the core added for all these instances (0 when the
            # contender above already made the one for these settings). Async ones
            # are per loop and went away with the probe's loop.
            row.extra["core_pooled_clients_added"] = pooled_after - pooled_before
    raw = rows[0]
    for r in rows:
        if raw.value and r.value is not None:
            r.ratio = r.value / raw.value
    return rows


def _make_raw_client(base_url: str) -> Any:
    import openai

    return openai.OpenAI(api_key=API_KEY, base_url=base_url)


def _count_pools(instances: list[Any], budget: float) -> dict[str, Any]:
    """Distinct httpx clients (= connection pools) behind the instances.

    Clients stay referenced until counted, so ``id()`` values cannot be recycled.
    Probing may build lazily-created clients, hence the time cap. Async clients
    are probed inside one running event loop: pooled async clients are per
    loop, and outside any loop a pooling library may rightly hand out a
    private client.
    """
    found: dict[str, Any] = {"instances": len(instances)}
    found.update(_probe(instances, "sync", SYNC_CLIENT_PATHS, budget))

    async def probe_async() -> dict[str, Any]:
        return _probe(instances, "async", ASYNC_CLIENT_PATHS, budget)

    found.update(asyncio.run(probe_async()))
    return found


def _probe(instances: list[Any], label: str, paths: Sequence[str], budget: float) -> dict[str, Any]:
    keep: list[object] = []
    ids: set[int] = set()
    via = ""
    start = time.perf_counter()
    for inst in instances:
        client, path = find_http_client(inst, paths)
        if client is None:
            break
        via = via or path
        keep.append(client)
        ids.add(id(client))
        if time.perf_counter() - start > budget:
            break
    return {
        f"{label}_probed": len(keep),
        f"{label}_pools": len(ids) if keep else None,
        f"{label}_via": via or "not found",
    }


def _pooled_client_count() -> int | None:
    """The core's own count of shared clients, when the core is importable."""
    try:
        from runcrate_integrations.net.clients import pooled_client_count

        count: int = pooled_client_count()
    except Exception:  # not built yet, or broken: the probe above still counts pools
        return None
    return count


# -------------------- imports


IMPORTS: list[tuple[str, str, str]] = [
    # (module, class a user imports from it, "ours" or "anchor"). Importing the
    # class, not just the module, so a lazily-loading package is timed in full.
    ("langchain_runcrate", "ChatRuncrate", "ours"),
    ("llama_index_runcrate", "RuncrateLLM", "ours"),
    ("langchain_openai", "ChatOpenAI", "anchor"),
    ("llama_index.llms.openai", "OpenAI", "anchor"),
]


def measure_imports(reps: int, anchor_python: str, deadline: float) -> list[Row]:
    """Fresh-interpreter import time: ``python -c "from X import C"`` minus ``python -c "pass"``.

    All commands are interleaved. No pass is thrown away: the contenders above
    already imported every one of these modules (in this interpreter or the
    anchor one), so their .pyc files exist and the page cache is warm. After
    two passes, a pass that would end past ``deadline`` (perf_counter) is skipped.
    """
    # Ours from this checkout even when not installed; anchors get the plain
    # environment. Run from an empty directory so nothing in the cwd shadows.
    env_anchor = dict(os.environ)
    env_ours = dict(env_anchor)
    env_ours["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env_ours.get("PYTHONPATH")) if p
    )
    jobs: list[tuple[str, str, str, dict[str, str]]] = []  # (key, python, code, env)
    for py in sorted({sys.executable, anchor_python}):
        jobs.append((f"pass@{py}", py, "pass", env_ours if py == sys.executable else env_anchor))
    for module, name, kind in IMPORTS:
        py, env = (sys.executable, env_ours) if kind == "ours" else (anchor_python, env_anchor)
        jobs.append((module, py, f"from {module} import {name}", env))
    times: dict[str, list[float]] = {key: [] for key, _, _, _ in jobs}
    failed: dict[str, str] = {}
    last_pass = 0.0
    with tempfile.TemporaryDirectory() as empty_dir:
        for rep in range(reps):
            pass_start = time.perf_counter()
            if rep >= 2 and pass_start + last_pass > deadline:
                break
            for key, py, code, env in jobs:
                if key in failed:
                    continue
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [py, "-c", code], env=env, cwd=empty_dir, capture_output=True, text=True
                )
                elapsed = (time.perf_counter() - t0) * 1e3
                if proc.returncode != 0:
                    lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
                    failed[key] = f"not available ({lines[-1][:120]})"
                else:
                    times[key].append(elapsed)
            last_pass = time.perf_counter() - pass_start
    rows: list[Row] = []
    for module, name, kind in IMPORTS:
        py = sys.executable if kind == "ours" else anchor_python
        row = Row(module, kind)
        row.extra.update(python=py, statement=f"from {module} import {name}")
        rows.append(row)
        if module in failed:
            row.note = failed[module]
            continue
        base = statistics.median(times[f"pass@{py}"])
        p25, med, p75 = _quartiles(times[module])
        row.value, row.p25, row.p75 = med - base, p25 - base, p75 - base
        row.samples = len(times[module])
        row.extra["interpreter_startup_ms"] = round(base, 1)
        # Background load only ever adds time: min is the figure to trust on a busy machine.
        row.extra["min_ms"] = round(min(times[module]) - base, 1)
    by_name = {r.name: r for r in rows}
    for ours, anchor in (
        ("langchain_runcrate", "langchain_openai"),
        ("llama_index_runcrate", "llama_index.llms.openai"),
    ):
        a, b = by_name[ours], by_name[anchor]
        if a.value is not None and b.value:
            a.ratio = a.value / b.value
        elif a.value is not None:
            a.note = f"no ratio: {anchor} not available (see --anchor-python)"
    return rows


# -------------------- targets


@dataclass
class Target:
    name: str
    limit: str
    value: str
    status: str  # PASS, FAIL or N/A


def _find(rows: list[Row], name: str) -> Row | None:
    return next((r for r in rows if r.name == name), None)


def evaluate_targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    phases: dict[str, list[Row]] = {k: [Row(**r) for r in results.get(k, [])] for k in PHASE_TITLES}

    def ratio_target(label: str, phase: str, name: str, limit: float, at_most: bool) -> None:
        row = _find(phases[phase], name)
        bound = f"{'<=' if at_most else '>='} {limit:.2f}x"
        if row is None or row.ratio is None:
            out.append(Target(label, bound, (row.note if row else "") or "not measured", "N/A"))
            return
        ok = row.ratio <= limit if at_most else row.ratio >= limit
        out.append(Target(label, bound, f"{row.ratio:.3f}x", "PASS" if ok else "FAIL"))

    for base, limit in ((CHAT_RUNCRATE, 1.10), (RUNCRATE_LLM, 1.15)):
        for name in (base, base + TRACKED):  # tracking keeps the same limits
            ratio_target(f"{name} per call vs raw", "call", name, limit, at_most=True)
            ratio_target(f"{name} per stream vs raw", "stream", name, limit, at_most=True)
    ratio_target(
        "import langchain_runcrate / langchain_openai", "imports", "langchain_runcrate", 0.6, True
    )
    ratio_target(
        "import llama_index_runcrate / llama_index.llms.openai",
        "imports",
        "llama_index_runcrate",
        0.7,
        True,
    )
    for name in (CHAT_RUNCRATE, RUNCRATE_LLM):
        row = _find(phases["construction"], name)
        label = f"{name}: {POOL_INSTANCES} instances share one pool"
        if row is None or row.value is None:
            out.append(
                Target(
                    label, "1 sync + 1 async", (row.note if row else "") or "not measured", "N/A"
                )
            )
            continue
        extra = row.extra
        sync_pools, async_pools = extra.get("sync_pools"), extra.get("async_pools")
        shown = (
            f"sync {sync_pools} over {extra.get('sync_probed')},"
            f" async {async_pools} over {extra.get('async_probed')} instances probed"
        )
        if sync_pools is None or async_pools is None:
            # Cannot verify what we cannot find: see SYNC/ASYNC_CLIENT_PATHS.
            out.append(Target(label, "1 sync + 1 async", "client not found; " + shown, "N/A"))
            continue
        if sync_pools > 1 or async_pools > 1:
            status = "FAIL"
        elif min(extra.get("sync_probed", 0), extra.get("async_probed", 0)) < POOL_INSTANCES:
            status = "N/A"  # the probe's time cap stopped it early: not all verified
        else:
            status = "PASS"
        out.append(Target(label, "1 sync + 1 async", shown, status))
    for name in (CHAT_RUNCRATE, RUNCRATE_LLM):
        for variant in (name, name + TRACKED):
            ratio_target(f"{variant} async throughput vs raw", "async", variant, 0.9, False)
    return out


# -------------------- anchors in another interpreter


def run_anchor_child(anchor_python: str, base_url: str, quick: bool) -> dict[str, Any]:
    """Run the anchor contenders (and a raw-SDK baseline) under ``anchor_python``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "anchors.json"
        cmd = [
            anchor_python,
            str(Path(__file__).resolve()),
            "--role",
            "anchors",
            "--server-url",
            base_url,
        ]
        cmd += ["--json", str(out)] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"anchor run under {anchor_python} failed:\n{tail}")
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def merge_anchor_results(results: dict[str, Any], child: dict[str, Any]) -> None:
    """Anchor rows come with ratios to the raw SDK of *their* interpreter."""
    openai_version = child["machine"]["versions"].get("openai")
    for phase in ("call", "stream", "async", "construction"):
        mine = [r for r in results[phase] if r["kind"] != "anchor"]
        for r in child.get(phase, []):
            if r["kind"] == "raw":
                r = dict(
                    r, name=f"{RAW} [anchor python, openai {openai_version}]", kind="raw-anchor"
                )
                r["ratio"] = 1.0 if r["value"] else None
            elif r["kind"] == "anchor":
                r = dict(r, name=f"{r['name']} [anchor python]")
            else:
                continue
            mine.append(r)
        results[phase] = mine
    results["machine"]["anchor_interpreter"] = child["machine"]


# -------------------- report


PHASE_TITLES = {
    "call": ("Non-streaming call: median latency", "ms"),
    "stream": (f"{STREAM_CHUNKS}-chunk stream, fully consumed: median latency", "ms"),
    "async": (f"{CONCURRENCY} concurrent async calls: median throughput", "calls/s"),
    "imports": ("Import time in a fresh interpreter (minus bare startup)", "ms"),
    "construction": ("Construction of one instance, and connection pools", "us"),
}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in (
        "openai",
        "httpx2",
        "httpx",
        "langchain-core",
        "langchain-openai",
        "llama-index-core",
        "llama-index-llms-openai",
        "llama-index-llms-openai-like",
        "runcrate-integrations",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": len(affinity) or os.cpu_count(),
        "versions": versions,
    }


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "calls/s" or x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def _pool_note(extra: dict[str, Any]) -> str:
    parts = [
        f"{label}: {extra[f'{label}_pools']} pool(s) over {extra[f'{label}_probed']}"
        f" instances via .{extra[f'{label}_via']}"
        for label in ("sync", "async")
        if extra.get(f"{label}_probed")
    ]
    if not parts:
        parts.append("no client found: see SYNC_CLIENT_PATHS / ASYNC_CLIENT_PATHS")
    if "core_pooled_clients_added" in extra:
        parts.append(f"core pooled_client_count +{extra['core_pooled_clients_added']}")
    return "; ".join(parts)


def print_phase(phase: str, rows: list[dict[str, Any]]) -> None:
    title, unit = PHASE_TITLES[phase]
    print(f"\n## {title}")
    header = f"{'contender':<52} {unit:>9} {'p25':>9} {'p75':>9} {'n':>5} {'x raw':>7}  notes"
    print(header)
    print("-" * len(header))
    for r in rows:
        notes = [r["note"]] if r["note"] else []
        extra = r.get("extra", {})
        if "http_requests_per_call" in extra and extra["http_requests_per_call"] != 1:
            notes.append(f"{extra['http_requests_per_call']} HTTP requests/call")
        if phase == "construction" and r["value"] is not None:
            notes.append(_pool_note(extra))
        if phase == "imports" and "min_ms" in extra:
            notes.append(f"min {extra['min_ms']:,.0f}")
        if phase == "imports" and r["kind"] == "anchor" and extra.get("python") != sys.executable:
            notes.append(f"python: {extra.get('python')}")
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        print(
            f"{r['name']:<52} {_fmt(r['value'], unit):>9} {_fmt(r['p25'], unit):>9} "
            f"{_fmt(r['p75'], unit):>9} {r['samples']:>5} {ratio:>7}  {'; '.join(notes)}"
        )
    if phase == "imports":
        print(
            "(x raw column here is ours / anchor: langchain_runcrate / langchain_openai and"
            " llama_index_runcrate / llama_index.llms.openai)"
        )


def print_report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"\nMachine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']} ({m['executable']})")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v))
    if "anchor_interpreter" in m:
        a = m["anchor_interpreter"]
        print(
            f"Anchor interpreter: {a['executable']} (Python {a['python']}): "
            + ", ".join(f"{k} {v}" for k, v in a["versions"].items() if v)
        )
    for phase in PHASE_TITLES:
        if phase in results:
            print_phase(phase, results[phase])
    print("\n## Targets")
    for t in results.get("targets", []):
        print(f"[{t['status']:<4}] {t['name']:<58} {t['limit']:>16}   got {t['value']}")
    print(f"\nTotal wall time: {results['wall_time_s']:.1f} s")


# -------------------- main


def _prepare_environment() -> None:
    for var in _TRACING_VARS:
        if os.environ.get(var, "").lower() not in ("", "false", "0"):
            print(
                f"note: {var} was set; disabled for this run so tracing does not skew timings",
                file=sys.stderr,
            )
            os.environ[var] = "false"
    loopback = "127.0.0.1,localhost"
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(p for p in (os.environ.get(var, ""), loopback) if p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    plan = Plan.for_mode(args.quick, anchors_only=args.role == "anchors")
    anchor_python = args.anchor_python or sys.executable
    anchors_elsewhere = _prefix_of(anchor_python) != sys.prefix
    kinds = (
        ["anchor"]
        if args.role == "anchors"
        else ["ours"] + ([] if anchors_elsewhere else ["anchor"])
    )
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "plan": asdict(plan),
        "machine": machine_info(),
    }
    pin = not args.no_pin
    if pin and args.role == "main":
        _pin(os.getpid(), server=False)

    def log(msg: str) -> None:
        if args.role == "main":
            print(f"[{time.perf_counter() - t_start:5.1f}s] {msg}", file=sys.stderr, flush=True)

    with _server_for(args, pin) as server:
        log(f"server at {server.base_url}; building contenders")
        contenders = build_contenders(server.base_url, kinds)
        log("non-streaming calls")
        results["call"] = measure_sync(
            contenders, "call", plan.call_warmup, plan.call_rounds, plan.call_budget, server
        )
        log("streams")
        results["stream"] = measure_sync(
            contenders, "stream", plan.stream_warmup, plan.stream_rounds, plan.stream_budget, server
        )
        log("async throughput")
        results["async"] = measure_async(contenders, plan.async_rounds, plan.async_budget)
        log("construction and pools")
        results["construction"] = measure_construction(
            server.base_url, kinds, plan.construct_budget
        )
        for phase in ("call", "stream", "async", "construction"):
            results[phase] = [asdict(r) for r in results[phase]]
        if args.role == "main" and anchors_elsewhere:
            log(f"anchors under {anchor_python}")
            try:
                merge_anchor_results(
                    results, run_anchor_child(anchor_python, server.base_url, args.quick)
                )
            except (RuntimeError, OSError, ValueError, KeyError) as exc:
                print(f"warning: {exc}", file=sys.stderr)
    if args.role == "main":
        log("imports in fresh interpreters")
        deadline = t_start + TIME_TARGET
        imports = measure_imports(plan.import_reps, anchor_python, deadline)
        results["imports"] = [asdict(r) for r in imports]
        results["targets"] = [asdict(t) for t in evaluate_targets(results)]
    results["wall_time_s"] = time.perf_counter() - t_start
    return results


def _prefix_of(python: str) -> str:
    """``sys.prefix`` of another interpreter: venv pythons are all symlinks to one binary."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return sys.prefix
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@contextmanager
def _server_for(args: argparse.Namespace, pin: bool) -> Iterator[Server]:
    if args.server_url:  # the anchor child reuses its parent's server
        yield Server(None, args.server_url)
    else:
        with running_server(pin) as server:
            yield server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Overhead of the Runcrate adapters vs the raw openai SDK."
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run, ~40 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--anchor-python",
        metavar="PATH",
        default=os.environ.get("BENCH_ANCHOR_PYTHON"),
        help="interpreter that has langchain-openai / llama-index-llms-openai-like installed "
        "(default: $BENCH_ANCHOR_PYTHON, else this interpreter)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin server and client to separate CPUs"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target FAILs")
    parser.add_argument(
        "--role", choices=("main", "anchors"), default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--server-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.anchor_python and not os.access(args.anchor_python, os.X_OK):
        parser.error(f"--anchor-python {args.anchor_python}: not an executable interpreter")

    _prepare_environment()
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.role == "main":
        print_report(results)
        if args.json:
            print(f"JSON written to {args.json}")
    if args.strict and any(t["status"] == "FAIL" for t in results.get("targets", [])):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
