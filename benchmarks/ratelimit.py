#!/usr/bin/env python
"""Bulk work against Runcrate's rate limits: failures, 429s and wall time vs the ideal.

Runcrate answers with ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` and, over the limit,
``429 {"error": {"code": "rate_limited"}}``; it does not say which limiter it runs. This script
starts the fault server (``tests/support/fake_openai_server.py``, echo mode, loopback, in its own
process) once per limiter mode, 20 requests/s by default:

* ``fixed``:  ``FixedWindow(limit=20, window=1.0)`` (windows aligned to whole seconds);
* ``bucket``: ``TokenBucket(rate=20, burst=20)`` (continuous refill, starts full);

and runs, each against a fresh limiter:

* 600 chat calls: ``ChatRuncrate.batch`` and ``.abatch`` (``max_concurrency`` 64), LlamaIndex
  ``RuncrateLLM.achat`` under ``asyncio.gather`` with a semaphore of 64, the ``.batch`` job split
  over 4 worker processes (16 concurrent each), and langchain-openai's ``ChatOpenAI.batch``;
* 20,000 texts: ``RuncrateEmbeddings.embed_documents`` (``chunk_size`` 100) and
  ``RuncrateEmbedding.get_text_embedding_batch`` (``embed_batch_size`` 100): 200 requests each.

Before those, the interactive case (``--interactive also|only|skip``): ``ChatRuncrate``,
``RuncrateLLM`` and ``ChatOpenAI`` each make 20 calls one after another (p50/p99 latency) and a
burst of 30 at once, against the server without rate-limit headers and with Runcrate's
documented ones (60 a minute, ``Reset`` a Unix time), whose quota the calls fit in: the added
latency is what following the headers costs while quota remains.

Every client gets ``max_retries=6``. Per job: failed items (exceptions or wrong echoes), the
429s the server sent (and their share of all requests), wall time, the ideal time (the fewest
requests the job needs ÷ the allowed rate) and wall ÷ ideal. Targets: 0 failed, 429s ≤ 5 %
(fixed windows) or ≤ 10 % (token bucket), wall ≤ 1.2 x ideal.

Usage::

    python benchmarks/ratelimit.py [--quick] [--json PATH] [--anchor-python PATH]
        [--limiter fixed|bucket|both] [--jobs KEY,...] [--rate N] [--retry-after] [--strict]

``ChatOpenAI`` runs in this interpreter when ``langchain_openai`` imports here, else under
``--anchor-python`` (default ``$BENCH_ANCHOR_PYTHON``), as in ``bench.py``; see
docs/benchmarks.md, "Rate limits".
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    # Lets the script find langchain_runcrate & co. and tests.support from a plain checkout.
    sys.path.insert(0, str(ROOT))

MODEL = "deepseek-ai/DeepSeek-V3"
EMBED_MODEL = "BAAI/bge-m3"
API_KEY = "rc_live_bench-not-a-real-key"
RATE = 20  # requests per second the server allows
MAX_RETRIES = 6
CONCURRENCY = 64
WORKERS = 4  # processes in the multi-process job; each runs CONCURRENCY // WORKERS at once
EMBED_CHUNK = 100  # texts per embeddings request
TARGET_RATIO = 1.2
TARGET_429_SHARE = {"fixed": 0.05, "bucket": 0.10}
LIMITERS = ("fixed", "bucket")

# Variables that would send loopback traffic through a proxy or trace to a remote service.
_TRACING_VARS = ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING")


@dataclass(frozen=True)
class Plan:
    chat_items: int
    embed_texts: int

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        return cls(120, 4_000) if quick else cls(600, 20_000)


def prompt(i: int) -> str:
    return f"prompt {i}: say something short"


def text(i: int) -> str:
    return f"document {i}: a few words to embed"


# -------------------- the server, in its own process


def serve() -> None:
    """``--role server``: run the fault server; obey JSON-line commands on stdin until EOF."""
    from tests.support.fake_openai_server import FakeOpenAIServer, FixedWindow, TokenBucket

    server = FakeOpenAIServer(read_timeout=120.0).start()
    print(json.dumps({"port": server.port}), flush=True)
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            reply: dict[str, Any] = {"ok": True}
            if cmd["op"] == "limit":  # a fresh limiter and zeroed counters
                server.reset()
                rate, retry_after = cmd["rate"], cmd.get("retry_after", False)
                if cmd["mode"] == "none":  # no X-RateLimit-* headers at all
                    server.rate_limit = None
                elif cmd["mode"] == "minute":  # Runcrate's form: rate a minute, Reset a Unix time
                    server.rate_limit = FixedWindow(rate, 60.0, aligned=False)
                elif cmd["mode"] == "fixed":
                    server.rate_limit = FixedWindow(rate, 1.0, retry_after=retry_after)
                else:
                    server.rate_limit = TokenBucket(rate, rate, retry_after=retry_after)
                reply["limiter"] = repr(server.rate_limit) if server.rate_limit else "no headers"
            elif cmd["op"] == "stats":
                paths = Counter(r.path.split("?")[0] for r in server.requests)
                reply |= {
                    "requests": server.request_count,
                    "admitted": server.admitted_count,
                    "rate_limited": server.rate_limited_count,
                    "connections": server.connection_count,
                    "by_path": dict(paths),
                }
            print(json.dumps(reply), flush=True)
    finally:
        server.stop()


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        hello = self._read()
        self.base_url = f"http://127.0.0.1:{hello['port']}/v1"

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fault server process exited")
        data: dict[str, Any] = json.loads(line)
        return data

    def command(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def limit(self, mode: str, rate: int, retry_after: bool) -> str:
        return str(
            self.command(op="limit", mode=mode, rate=rate, retry_after=retry_after)["limiter"]
        )

    def stats(self) -> dict[str, Any]:
        return self.command(op="stats")


@contextmanager
def running_server() -> Iterator[ServerProcess]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--role", "server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield ServerProcess(proc)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -------------------- jobs


@dataclass
class Outcome:
    """What a job's client side saw."""

    items: int
    failed: int = 0
    wall: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)  # exception type -> count
    note: str = ""


def _tally(
    expected: Sequence[str], answers: Sequence[Any], content: Callable[[Any], Any]
) -> Outcome:
    out = Outcome(len(expected))
    errors: Counter[str] = Counter()
    for want, got in zip(expected, answers, strict=True):
        if isinstance(got, BaseException):
            errors[type(got).__name__] += 1
        elif content(got) != want:
            errors["wrong answer"] += 1
    out.errors = dict(errors)
    out.failed = sum(errors.values())
    return out


def _timed(run: Callable[[], Outcome]) -> Outcome:
    started = time.perf_counter()
    out = run()
    out.wall = time.perf_counter() - started
    return out


def chat_runcrate(base_url: str, max_retries: int = MAX_RETRIES) -> Any:
    from langchain_runcrate import ChatRuncrate

    settings: dict[str, Any] = {"base_url": base_url, "api_key": API_KEY}
    return ChatRuncrate(model=MODEL, max_retries=max_retries, **settings)


def _lc_batch(llm: Any, prompts: list[str], concurrency: int) -> Outcome:
    config = {"max_concurrency": concurrency}
    answers = llm.batch(prompts, config=config, return_exceptions=True)
    return _tally(prompts, answers, lambda m: m.content)


def job_lc_batch(base_url: str, plan: Plan) -> Outcome:
    llm, prompts = chat_runcrate(base_url), [prompt(i) for i in range(plan.chat_items)]
    return _timed(lambda: _lc_batch(llm, prompts, CONCURRENCY))


def job_lc_abatch(base_url: str, plan: Plan) -> Outcome:
    llm, prompts = chat_runcrate(base_url), [prompt(i) for i in range(plan.chat_items)]

    async def run() -> Outcome:
        config = {"max_concurrency": CONCURRENCY}
        answers = await llm.abatch(prompts, config=config, return_exceptions=True)
        return _tally(prompts, answers, lambda m: m.content)

    return _timed(lambda: asyncio.run(run()))


def job_li_achat(base_url: str, plan: Plan) -> Outcome:
    from llama_index.core.llms import ChatMessage

    from llama_index_runcrate import RuncrateLLM

    llm = RuncrateLLM(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=MAX_RETRIES)
    prompts = [prompt(i) for i in range(plan.chat_items)]

    async def run() -> Outcome:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(p: str) -> Any:
            async with gate:
                return await llm.achat([ChatMessage(role="user", content=p)])

        answers = await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)
        return _tally(prompts, answers, lambda r: r.message.content)

    return _timed(lambda: asyncio.run(run()))


def _embed_job(embed: Callable[[list[str]], list[list[float]]], plan: Plan) -> Outcome:
    from tests.support.fake_openai_server import hash_vector

    texts = [text(i) for i in range(plan.embed_texts)]

    def run() -> Outcome:
        try:
            vectors = embed(texts)
        except Exception as exc:  # one failed chunk loses the whole call
            msg = str(exc).splitlines()[0][:60] if str(exc) else ""
            return Outcome(len(texts), len(texts), errors={type(exc).__name__: 1}, note=msg)
        probes = range(0, len(texts), max(1, len(texts) // 50))
        bad = len(vectors) != len(texts) or any(vectors[i] != hash_vector(texts[i]) for i in probes)
        return Outcome(len(texts), len(texts) if bad else 0, note="wrong vectors" if bad else "")

    return _timed(run)


def job_lc_embed(base_url: str, plan: Plan) -> Outcome:
    from langchain_runcrate import RuncrateEmbeddings

    emb = RuncrateEmbeddings(
        model=EMBED_MODEL,
        base_url=base_url,
        api_key=API_KEY,
        max_retries=MAX_RETRIES,
        chunk_size=EMBED_CHUNK,
    )
    return _embed_job(emb.embed_documents, plan)


def job_li_embed(base_url: str, plan: Plan) -> Outcome:
    from llama_index_runcrate import RuncrateEmbedding

    emb = RuncrateEmbedding(
        model=EMBED_MODEL,
        base_url=base_url,
        api_key=API_KEY,
        max_retries=MAX_RETRIES,
        embed_batch_size=EMBED_CHUNK,
    )
    return _embed_job(emb.get_text_embedding_batch, plan)


def _worker_ready(delay: float) -> int:
    import openai  # noqa: F401  # imports done before the clock starts (the core loads it lazily)

    chat_runcrate("http://127.0.0.1:9/v1")  # builds no connection

    time.sleep(delay)  # holds this worker so that the next warm-up task starts another
    return os.getpid()


def _worker_chat(base_url: str, prompts: list[str], concurrency: int) -> dict[str, Any]:
    return asdict(_lc_batch(chat_runcrate(base_url), prompts, concurrency))


def job_lc_batch_processes(base_url: str, plan: Plan) -> Outcome:
    prompts = [prompt(i) for i in range(plan.chat_items)]
    shares = [prompts[w::WORKERS] for w in range(WORKERS)]
    # spawn, not fork: this process already holds client pools, threads and event loops.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        pids = set(pool.map(_worker_ready, [0.5] * WORKERS))
        started = time.perf_counter()
        futures = [pool.submit(_worker_chat, base_url, s, CONCURRENCY // WORKERS) for s in shares]
        parts = [f.result() for f in futures]
        wall = time.perf_counter() - started
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part["errors"])
    note = "" if len(pids) == WORKERS else f"only {len(pids)} worker processes started"
    return Outcome(len(prompts), sum(p["failed"] for p in parts), wall, dict(errors), note)


def chat_openai_batch(base_url: str, items: int) -> Outcome:
    """ChatOpenAI.batch in this interpreter (also the body of ``--role anchor``)."""
    from langchain_openai import ChatOpenAI  # type: ignore[import-not-found,unused-ignore]

    llm = ChatOpenAI(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=MAX_RETRIES)
    prompts = [prompt(i) for i in range(items)]
    return _timed(lambda: _lc_batch(llm, prompts, CONCURRENCY))


def job_chat_openai(base_url: str, plan: Plan, anchor_python: str | None) -> Outcome:
    if importlib.util.find_spec("langchain_openai") is not None:
        return chat_openai_batch(base_url, plan.chat_items)
    if not anchor_python:
        raise Unavailable("langchain_openai not importable here; pass --anchor-python")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "anchor.json"
        cmd = [anchor_python, str(Path(__file__).resolve()), "--role", "anchor"]
        cmd += ["--server-url", base_url, "--items", str(plan.chat_items), "--json", str(out)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise Unavailable(f"anchor run under {anchor_python} failed: {tail}")
        return Outcome(**json.loads(out.read_text()))


class Unavailable(Exception):
    """A job that cannot run here (missing package or interpreter)."""


# -------------------- interactive use: one call after another, and a burst within the quota

INTERACTIVE_CALLS = 20  # sequential calls per client and server
BURST = 30  # prompts in one batch, max_concurrency BURST
PER_MINUTE = 60  # the per-minute server's limit: the burst and the calls fit in it


def interactive_client(kind: str, base_url: str) -> Callable[[str], Any]:
    """One call of ``kind`` ("ChatRuncrate", "RuncrateLLM", "ChatOpenAI"): prompt -> answer.

    Each run has a key of its own, as a new user would: a key's limiter (and the quota it has
    seen) is shared by every instance in the process, and the server here changes between runs.
    """
    key = f"{API_KEY}-{uuid.uuid4().hex[:8]}"
    if kind == "ChatRuncrate":
        from langchain_runcrate import ChatRuncrate

        llm = ChatRuncrate(model=MODEL, base_url=base_url, api_key=key, max_retries=MAX_RETRIES)
        return lambda p: llm.invoke(p).content
    if kind == "RuncrateLLM":
        from llama_index.core.llms import ChatMessage

        from llama_index_runcrate import RuncrateLLM

        li = RuncrateLLM(model=MODEL, base_url=base_url, api_key=key, max_retries=MAX_RETRIES)
        return lambda p: li.chat([ChatMessage(role="user", content=p)]).message.content
    from langchain_openai import ChatOpenAI  # type: ignore[import-not-found,unused-ignore]

    openai_llm = ChatOpenAI(model=MODEL, base_url=base_url, api_key=key, max_retries=MAX_RETRIES)
    return lambda p: openai_llm.invoke(p).content


def interactive_run(kind: str, base_url: str) -> dict[str, Any]:
    """Sequential calls (latency of each) then a burst of BURST (wall): the numbers of a row."""
    call = interactive_client(kind, base_url)
    call("warm up")  # the first answer: connections open, the quota known
    latencies = []
    for i in range(INTERACTIVE_CALLS):
        started = time.perf_counter()
        assert call(prompt(i)) == prompt(i)
        latencies.append(time.perf_counter() - started)
    burst = [prompt(i) for i in range(BURST)]
    started = time.perf_counter()
    with ThreadPoolExecutor(BURST) as pool:  # what batch(max_concurrency=30) does
        answers = list(pool.map(call, burst))
    burst_wall = time.perf_counter() - started
    assert answers == burst
    latencies.sort()
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[-1], "burst": burst_wall}


def interactive_job(kind: str, base_url: str, anchor_python: str | None) -> dict[str, Any]:
    if kind != "ChatOpenAI" or importlib.util.find_spec("langchain_openai") is not None:
        return interactive_run(kind, base_url)
    if not anchor_python:
        raise Unavailable("langchain_openai not importable here; pass --anchor-python")
    cmd = [
        anchor_python,
        str(Path(__file__).resolve()),
        "--role",
        "anchor-interactive",
        "--server-url",
        base_url,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise Unavailable(f"anchor run under {anchor_python} failed: {tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_interactive(server: ServerProcess, anchor_python: str | None,
                    log: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for kind in ("ChatRuncrate", "RuncrateLLM", "ChatOpenAI"):
        for mode in ("none", "minute"):
            desc = server.limit(mode, PER_MINUTE, False)
            log(f"interactive {kind} against {desc}")
            try:
                numbers = interactive_job(kind, server.base_url, anchor_python)
            except Unavailable as exc:
                log(f"  not available: {exc}")
                continue
            stats = server.stats()
            rows.append(
                {
                    "client": kind,
                    "server": desc,
                    "mode": mode,
                    **numbers,
                    "rate_limited": stats["rate_limited"],
                }
            )
            log(f"  p50 {numbers['p50'] * 1000:.1f} ms, burst of {BURST} {numbers['burst']:.3f} s")
    return rows


def print_interactive(rows: list[dict[str, Any]]) -> None:
    print(
        f"\nInteractive use: {INTERACTIVE_CALLS} calls one after another, then a burst of "
        f"{BURST} at once, against a server without rate-limit headers and one sending "
        f"Runcrate's ({PER_MINUTE} a minute, Reset a Unix time; the calls fit in it).\n"
    )
    print("| client | server | per call p50 | p99 | added p50 vs no headers | burst of 30 | 429s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    base = {r["client"]: r["p50"] for r in rows if r["mode"] == "none"}
    for r in rows:
        added = r["p50"] - base[r["client"]] if r["client"] in base else None
        shown = f"{added * 1000:+.2f} ms" if added is not None and r["mode"] != "none" else "-"
        print(
            f"| {r['client']} | {r['server']} | {r['p50'] * 1000:.2f} ms "
            f"| {r['p99'] * 1000:.2f} ms | {shown} | {r['burst']:.3f} s | {r['rate_limited']} |"
        )


@dataclass(frozen=True)
class Job:
    key: str
    label: str
    unit: str  # "items" (one request each) or "texts" (EMBED_CHUNK per request)
    run: Callable[..., Outcome]


JOBS = [
    Job("lc-batch", "ChatRuncrate.batch", "items", job_lc_batch),
    Job("lc-abatch", "ChatRuncrate.abatch", "items", job_lc_abatch),
    Job("li-achat", "RuncrateLLM.achat (gather, sem 64)", "items", job_li_achat),
    Job("lc-embed", "RuncrateEmbeddings.embed_documents", "texts", job_lc_embed),
    Job("li-embed", "RuncrateEmbedding.get_text_embedding_batch", "texts", job_li_embed),
    Job(
        "lc-batch-4proc",
        f"ChatRuncrate.batch, {WORKERS} processes",
        "items",
        job_lc_batch_processes,
    ),
    Job("chatopenai-batch", "ChatOpenAI.batch (langchain-openai)", "items", job_chat_openai),
]


# -------------------- rows and report


@dataclass
class Row:
    job: str
    key: str
    limiter: str
    items: int
    failed: int | None
    requests: int | None
    rate_limited: int | None
    wall: float | None
    ideal: float
    min_requests: int
    ratio: float | None = None
    share_429: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    note: str = ""
    verdict: str = "N/A"


def make_row(job: Job, limiter: str, plan: Plan, rate: int, out: Outcome | None,
             stats: dict[str, Any] | None, note: str = "") -> Row:  # fmt: skip
    items = plan.chat_items if job.unit == "items" else plan.embed_texts
    min_requests = items if job.unit == "items" else math.ceil(items / EMBED_CHUNK)
    ideal = min_requests / rate
    row = Row(job.label, job.key, limiter, items, None, None, None, None, ideal, min_requests)
    row.note = note
    if out is None or stats is None:
        return row
    row.failed, row.wall, row.errors = out.failed, out.wall, out.errors
    row.requests, row.rate_limited = stats["requests"], stats["rate_limited"]
    row.ratio = out.wall / ideal
    row.share_429 = row.rate_limited / row.requests if row.requests else 0.0
    notes = [out.note] if out.note else []
    if job.unit == "texts":
        notes.append(f"{row.requests} requests for {min_requests} chunks of {EMBED_CHUNK}")
    if out.errors:
        notes.append(", ".join(f"{n} x {k}" for k, n in sorted(out.errors.items())))
    row.note = "; ".join(notes)
    misses = []
    if row.failed:
        misses.append("failed")
    if row.share_429 > TARGET_429_SHARE[limiter]:
        misses.append("429s")
    if row.ratio > TARGET_RATIO:
        misses.append("wall")
    row.verdict = "ok" if not misses else "FAIL " + "+".join(misses)
    return row


def print_table(rows: list[Row], rate: int) -> None:
    fixed, bucket = (f"{TARGET_429_SHARE[m]:.0%}" for m in LIMITERS)
    print(
        f"\nRate limit {rate} req/s; max_retries={MAX_RETRIES}, concurrency {CONCURRENCY}. "
        f"Targets: 0 failed, 429s <= {fixed} (fixed) / {bucket} (bucket) of requests, "
        f"wall <= {TARGET_RATIO}x ideal.\n"
    )
    print("| job | limiter | failed | 429s (% of requests) | requests | wall | ideal | ratio "
          "| verdict | notes |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        if r.wall is None:
            dashes = "| - " * 4
            print(f"| {r.job} | {r.limiter} {dashes}| {r.ideal:.1f} s | - | N/A | {r.note} |")
            continue
        assert r.share_429 is not None and r.ratio is not None
        print(
            f"| {r.job} | {r.limiter} | {r.failed:,} / {r.items:,} "
            f"| {r.rate_limited:,} ({r.share_429:.0%}) | {r.requests:,} | {r.wall:.1f} s "
            f"| {r.ideal:.1f} s | {r.ratio:.2f} | {r.verdict} | {r.note} |"
        )


def machine_info(anchor_python: str | None) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("openai", "httpx2", "langchain-core", "llama-index-core", "langchain-openai"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "anchor_python": anchor_python,
    }


# -------------------- main


def _prepare_environment() -> None:
    for var in _TRACING_VARS:
        os.environ[var] = "false"
    loopback = "127.0.0.1,localhost"
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(p for p in (os.environ.get(var, ""), loopback) if p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan = Plan.for_mode(args.quick)
    limiters = LIMITERS if args.limiter == "both" else (args.limiter,)
    keys = set(args.jobs.split(",")) if args.jobs else {j.key for j in JOBS}
    unknown = keys - {j.key for j in JOBS}
    if unknown:
        raise SystemExit(f"unknown --jobs {sorted(unknown)}; known: {[j.key for j in JOBS]}")

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    interactive: list[dict[str, Any]] = []
    with running_server() as server:
        log(f"fault server at {server.base_url}")
        if args.interactive != "skip":
            interactive = run_interactive(server, args.anchor_python, log)
        if args.interactive == "only":
            limiters = ()
        for limiter in limiters:
            for job in (j for j in JOBS if j.key in keys):
                desc = server.limit(limiter, args.rate, args.retry_after)
                log(f"{job.key} under {desc}")
                extra = (args.anchor_python,) if job.key == "chatopenai-batch" else ()
                try:
                    out = job.run(server.base_url, plan, *extra)
                except Exception as exc:  # report and go on: one broken job must not end the run
                    why = (
                        str(exc) if isinstance(exc, Unavailable) else f"{type(exc).__name__}: {exc}"
                    )
                    rows.append(make_row(job, limiter, plan, args.rate, None, None, why))
                    log(f"  not available: {why}")
                    continue
                row = make_row(job, limiter, plan, args.rate, out, server.stats())
                rows.append(row)
                log(f"  {row.failed} failed, {row.rate_limited} 429s of {row.requests} requests, "
                    f"{row.wall:.1f} s ({row.ratio:.2f}x ideal)")  # fmt: skip
                time.sleep(0.2)  # let pools drop idle connections before the next fresh limiter
    return {
        "mode": "quick" if args.quick else "full",
        "rate": args.rate,
        "retry_after": args.retry_after,
        "plan": asdict(plan),
        "machine": machine_info(args.anchor_python),
        "rows": [asdict(r) for r in rows],
        "interactive": interactive,
        "wall_time_s": time.perf_counter() - t0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="120 chat calls, 4,000 texts")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--anchor-python",
        metavar="PATH",
        default=os.environ.get("BENCH_ANCHOR_PYTHON"),
        help="interpreter with langchain-openai, when it does not import here "
        "(default: $BENCH_ANCHOR_PYTHON)",
    )
    parser.add_argument("--limiter", choices=(*LIMITERS, "both"), default="both")
    parser.add_argument("--jobs", metavar="KEY,...", help=f"only these: {[j.key for j in JOBS]}")
    parser.add_argument("--rate", type=int, default=RATE, help="requests/s allowed (default 20)")
    parser.add_argument(
        "--retry-after", action="store_true", help="the server also sends Retry-After on 429s"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every row is ok")
    parser.add_argument(
        "--interactive",
        choices=("also", "only", "skip"),
        default="also",
        help="the interactive rows: with the bulk jobs (default), alone, or not",
    )
    parser.add_argument("--role", choices=("main", "server", "anchor", "anchor-interactive"),
                        default="main",
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--server-url", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _prepare_environment()

    if args.role == "server":
        serve()
        return 0
    if args.role == "anchor":
        out = chat_openai_batch(args.server_url, args.items)
        Path(args.json).write_text(json.dumps(asdict(out)))
        return 0
    if args.role == "anchor-interactive":
        print(json.dumps(interactive_run("ChatOpenAI", args.server_url)))
        return 0
    if args.anchor_python and not os.access(args.anchor_python, os.X_OK):
        parser.error(f"--anchor-python {args.anchor_python}: not an executable interpreter")

    results = run(args)
    rows = [Row(**r) for r in results["rows"]]
    if results["interactive"]:
        print_interactive(results["interactive"])
    if rows:
        print_table(rows, args.rate)
    print(f"\nTotal wall time: {results['wall_time_s']:.0f} s ({results['mode']} run)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    if args.strict and any(r.verdict != "ok" for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
