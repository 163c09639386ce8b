"""Run one documentation page's python blocks, replaying (or recording) its cassette.

Replay (every test run): ``RUNCRATE_BASE_URL`` and the other server variables are unset and
``RUNCRATE_API_KEY`` is the dummy replay key, so the snippets talk to Runcrate's default URL
and ``cassettes/docs/<page>.yaml`` answers every request (vcr, record mode ``none``, matched on
method, path and parsed JSON body with :mod:`tests.vcr_support`'s matcher). Every recorded
exchange must be asked for: a cassette with exchanges left over belongs to other docs.

Recording (``scripts/record-docs``, ``RUNCRATE_RECORD_DOCS=1``): the snippets' one base URL is
a :class:`~tests.docs.router.Router` in front of the servers the script names, and the
cassette is rewritten through the same scrubbing hooks as every other cassette.

The blocks of a page run in order in one module namespace, like notebook cells; top-level
``await`` works (one event loop per page). Each block is compiled under the page's own path,
padded so that line numbers are the page's: a traceback points at ``docs/x.md``, line N.
The current directory is a scratch folder; LlamaIndex's ``Settings`` and the model catalog
cache are reset around every page, so pages do not depend on each other.
"""

from __future__ import annotations

import ast
import asyncio
import datetime
import inspect
import json
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from tests import vcr_support

from .pages import ROOT, Block, cassette_name, page_blocks
from .router import Router, Upstreams

CASSETTES = vcr_support.CASSETTES / "docs"
RECORDING_INFO = CASSETTES / "recording.json"
REPLAY_KEY = "rc_live_dummy_key_for_replay"
SERVER_VARS = (
    "RUNCRATE_BASE_URL",
    "RUNCRATE_API_BASE",
    "RUNCRATE_EMBEDDINGS_BASE_URL",
    "RUNCRATE_REASONING_BASE_URL",
    "RUNCRATE_MEDIA_BASE_URL",
    "RUNCRATE_BILLING_URL",
)
# The billing API is not behind the router (another URL, GET only): while recording, the
# snippets see the URL scripts/record-docs names; in replay, Runcrate's own.
BILLING_URL = "RUNCRATE_BILLING_URL"
# Tracing would send the snippets' runs to LangSmith: never from a docs test.
TRACING_VARS = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")


def recording() -> bool:
    """True while ``scripts/record-docs`` runs."""
    return os.environ.get("RUNCRATE_RECORD_DOCS") == "1"


def record_command(page: str) -> str:
    return f"scripts/record-docs --local {page}"


@dataclass
class PageRun:
    """What happened to one page: the blocks run and the blocks left out (with reasons)."""

    page: str
    ran: list[Block] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)


#: Filled as pages run; the terminal summary of ``tests/docs/conftest.py`` reports it.
RESULTS: dict[str, PageRun] = {}


def _vcr(record: bool) -> vcr.VCR:
    config = vcr_support.vcr_config()
    my_vcr = vcr.VCR(
        record_mode="all" if record else "none",
        match_on=config["match_on"],
        filter_headers=config["filter_headers"],
        before_record_request=config["before_record_request"],
        before_record_response=config["before_record_response"],
        decode_compressed_response=True,
        serializer="yaml",
        record_on_exception=False,  # a page that fails while recording leaves no cassette
    )
    my_vcr.register_matcher("json_body", vcr_support.json_body_matcher)
    my_vcr.register_serializer("yaml", vcr_support.ReadableYamlSerializer())
    return my_vcr


def _reset_globals() -> None:
    """Forget what a previous page (or attempt) left in process-wide state the snippets read:
    the catalog, token calibration and rate-limit state, so recording and replay start alike."""
    from runcrate_integrations import catalog, tokens
    from runcrate_integrations.net import ratelimit

    catalog.clear_cache()
    tokens._registry.clear()
    ratelimit.reset_limiters()


@contextmanager
def _llama_index_settings() -> Iterator[None]:
    """Restore LlamaIndex's global ``Settings`` after the page (snippets assign to it)."""
    try:
        from llama_index.core import Settings
    except ImportError:  # the llama-index extra is not installed: nothing to restore
        yield
        return
    saved = dict(vars(Settings))
    try:
        yield
    finally:
        vars(Settings).clear()
        vars(Settings).update(saved)


def _compile(block: Block) -> types.CodeType:
    # Padding with blank lines makes the code's line numbers the page's, so tracebacks (and
    # linecache, which then reads the page itself) show the Markdown line that failed.
    source = "\n" * (block.line - 1) + block.code
    code: types.CodeType = compile(
        source,
        str(ROOT / block.page),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    return code


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(text)


def run_blocks(blocks: list[Block], module_name: str) -> list[Block]:
    """Run the runnable blocks in order in one fresh module; return those that ran."""
    module = types.ModuleType(module_name)
    module.__dict__["__file__"] = str(ROOT / blocks[0].page) if blocks else ""
    sys.modules[module_name] = module  # pickling, pydantic and typing look classes up here
    loop = asyncio.new_event_loop()
    ran: list[Block] = []
    try:
        for block in blocks:
            if block.skip is not None:
                continue
            code = _compile(block)
            try:
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, module.__dict__))
                else:
                    exec(code, module.__dict__)
            except BaseException as exc:
                _note(exc, f"in the python block at {block.where}")
                if isinstance(exc, CannotOverwriteExistingCassetteException):
                    _note(
                        exc,
                        f"this request is not in the page's cassette: re-record it with "
                        f"`{record_command(block.page)}`",
                    )
                raise
            ran.append(block)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())  # closes the pooled clients
        finally:
            loop.close()
            sys.modules.pop(module_name, None)
    return ran


@contextmanager
def _environment(monkeypatch: pytest.MonkeyPatch, base_url: str | None) -> Iterator[None]:
    billing = os.environ.get(BILLING_URL)
    with monkeypatch.context() as env:
        for name in (*SERVER_VARS, *TRACING_VARS):
            env.delenv(name, raising=False)
        if base_url is not None:
            env.setenv("RUNCRATE_BASE_URL", base_url)
            if billing:
                env.setenv(BILLING_URL, billing)
        elif not recording():
            env.setenv("RUNCRATE_API_KEY", REPLAY_KEY)  # never sent anywhere
        yield


def _module_name(page: str) -> str:
    return "docs_" + "".join(c if c.isalnum() else "_" for c in Path(page).stem)


def run_page(path: Path, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> PageRun:
    """Run (or, under ``scripts/record-docs``, record) one page; its result goes to RESULTS."""
    blocks = page_blocks(path)
    run = PageRun(page=blocks[0].page if blocks else path.name)
    run.skipped = [b for b in blocks if b.skip is not None]
    if not blocks:
        return run
    # Noted before running, so that a page that fails still has its left-out blocks reported.
    RESULTS[run.page] = run
    cassette = CASSETTES / cassette_name(run.page)
    monkeypatch.chdir(workdir)
    if recording():
        run.ran = _record(blocks, cassette, monkeypatch, workdir)
    else:
        run.ran = _replay(blocks, cassette, monkeypatch)
    return run


def _replay(blocks: list[Block], cassette: Path, monkeypatch: pytest.MonkeyPatch) -> list[Block]:
    page = blocks[0].page
    _reset_globals()
    try:
        with (
            _environment(monkeypatch, None),
            _llama_index_settings(),
            _vcr(record=False).use_cassette(str(cassette)) as tape,
        ):
            ran = run_blocks(blocks, _module_name(page))
            left = [req for i, req in enumerate(tape.requests) if not tape.play_counts[i]]
    finally:
        _reset_globals()  # the catalog the page read must not reach other tests
    if left:
        listed = "\n".join(f"  {r.method} {r.path} {_short(r.body)}" for r in left)
        pytest.fail(
            f"{page}: {len(left)} recorded exchange(s) in {cassette.name} were never "
            f"requested, so the cassette belongs to other docs; re-record it with "
            f"`{record_command(page)}`:\n{listed}"
        )
    return ran


def _short(body: Any) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return text if len(text) <= 160 else text[:157] + "..."


def _record(
    blocks: list[Block], cassette: Path, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> list[Block]:
    """Record the page afresh. A page that fails is recorded again from its first block, in a
    fresh process state, up to RUNCRATE_RECORD_RETRIES times (default 2): the small recording
    model does not always answer the way a snippet needs, and a block retried alone would
    replay in a state (token calibration, catalog) the recording never had. The old cassette
    is replaced only by a whole, successful recording."""
    page = blocks[0].page
    chat = os.environ.get("RUNCRATE_BASE_URL") or "https://api.runcrate.ai/v1"
    if not os.environ.get("RUNCRATE_API_KEY"):
        pytest.fail("recording needs RUNCRATE_API_KEY (scripts/record-docs sets it with --local)")
    upstreams = Upstreams.from_env(chat)
    retries = int(os.environ.get("RUNCRATE_RECORD_RETRIES", "2"))
    cassette.parent.mkdir(parents=True, exist_ok=True)
    fresh = workdir / cassette.name
    for attempt in range(retries + 1):
        fresh.unlink(missing_ok=True)
        _reset_globals()
        try:
            with (
                Router(upstreams) as router,
                _environment(monkeypatch, router.base_url),
                _llama_index_settings(),
                _vcr(record=True).use_cassette(str(fresh)),
            ):
                ran = run_blocks(blocks, _module_name(page))
            break
        except Exception as exc:
            if attempt == retries:
                raise
            print(
                f"record-docs: {page} failed ({type(exc).__name__}: {str(exc)[:200]}); "
                "recording it again from the start",
                file=sys.stderr,
            )
        finally:
            _reset_globals()
    fresh.replace(cassette)
    _stamp(page, cassette, upstreams)
    return ran


def _stamp(page: str, cassette: Path, upstreams: Upstreams) -> None:
    """Note in cassettes/docs/recording.json when and against what ``page`` was recorded."""
    info: dict[str, Any] = {}
    if RECORDING_INFO.exists():
        info = json.loads(RECORDING_INFO.read_text())
    if not cassette.exists():  # the page made no request: nothing to replay
        info.pop(page, None)
    else:
        info[page] = {
            "cassette": cassette.name,
            "recorded_on": datetime.date.today().isoformat(),
            "server": os.environ.get("RUNCRATE_DOCS_RECORDED_SERVER") or upstreams.chat,
            "reasoning_models": sorted(upstreams.reasoning_models),
        }
        if "/billing/" in cassette.read_text(encoding="utf-8"):
            info[page]["billing_server"] = (
                os.environ.get("RUNCRATE_RECORDED_BILLING_SERVER")
                or os.environ.get(BILLING_URL)
                or "https://runcrate.ai/api/v1"
            )
    RECORDING_INFO.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
