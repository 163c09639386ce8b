"""Live when RUNCRATE_API_KEY is set; otherwise replay the example's recorded exchanges.

Recorded with ``scripts/record-examples`` against a real server; the same VCR matching and
scrubbing as the test cassettes (``tests/vcr_support.py``).

Environment (read only when live or recording; replay ignores all but the key's absence):

    RUNCRATE_API_KEY               set: run live against the server below; unset: replay
    RUNCRATE_BASE_URL              chat server (default https://api.runcrate.ai/v1)
    RUNCRATE_EMBEDDINGS_BASE_URL   embeddings server (default: RUNCRATE_BASE_URL)
    RUNCRATE_REASONING_BASE_URL    reasoning-model server (default: RUNCRATE_BASE_URL); the
                                   same names as scripts/record. No example calls a reasoning
                                   model yet; base_url("reasoning") is where one would go.
    RUNCRATE_MEDIA_BASE_URL        images, speech, transcription, video (default:
                                   RUNCRATE_BASE_URL); media models are the classes' defaults,
                                   Runcrate's catalog ids.
    RUNCRATE_MODEL                 chat model (default deepseek/deepseek-v3.2)
    RUNCRATE_EMBEDDING_MODEL       embedding model (default BAAI/bge-m3)
    RUNCRATE_BILLING_URL           billing API (default https://runcrate.ai/api/v1)

Every example prints one line to stderr when it starts, saying which mode it runs in and, live,
where each kind of request goes:

    [live] https://api.runcrate.ai/v1 · model deepseek/deepseek-v3.2 · embeddings BAAI/bge-m3 @ ...
    [replay] cassettes/examples/langchain_rag.yaml (recorded from a real server, no network) ...
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runcrate_integrations import DEFAULT_BASE_URL  # noqa: E402  (path set just above)
from tests import vcr_support  # noqa: E402

CASSETTES = ROOT / "cassettes" / "examples"
MODELS = CASSETTES / "models.json"
BASE_URL_ENV = {
    "chat": "RUNCRATE_BASE_URL",
    "embeddings": "RUNCRATE_EMBEDDINGS_BASE_URL",
    "reasoning": "RUNCRATE_REASONING_BASE_URL",
    "media": "RUNCRATE_MEDIA_BASE_URL",
}


def _detect_mode() -> str:
    if os.environ.get("RUNCRATE_RECORD_EXAMPLES") == "1":
        return "record"
    return "live" if os.environ.get("RUNCRATE_API_KEY") else "replay"


# Decided once, before replay puts a placeholder key into the environment.
_MODE = _detect_mode()


def _mode() -> str:
    return _MODE


def chat_model() -> str:
    """The chat model id: the recorded one in replay, else RUNCRATE_MODEL or a default."""
    if _mode() == "replay":
        return str(json.loads(MODELS.read_text())["chat"])
    return os.environ.get("RUNCRATE_MODEL", "deepseek/deepseek-v3.2")


def embedding_model() -> str:
    """The embedding model id, chosen the same way (RUNCRATE_EMBEDDING_MODEL when live)."""
    if _mode() == "replay":
        return str(json.loads(MODELS.read_text())["embedding"])
    return os.environ.get("RUNCRATE_EMBEDDING_MODEL", "BAAI/bge-m3")


def base_url(kind: str = "chat") -> str | None:
    """Where ``kind`` ("chat", "embeddings", "reasoning") requests go; None in replay.

    Live: its own variable, else RUNCRATE_BASE_URL, else Runcrate. In replay the adapters keep
    their default and the cassette answers (matching ignores the host).
    """
    if _mode() == "replay":
        return None
    chat = os.environ.get("RUNCRATE_BASE_URL") or DEFAULT_BASE_URL
    return os.environ.get(BASE_URL_ENV[kind]) or chat


def billing_url() -> str | None:
    """Where billing requests go: RUNCRATE_BILLING_URL when live or recording (unset: Runcrate's
    billing API); None in replay, where the cassette answers Runcrate's URL."""
    if _mode() == "replay":
        return None
    return os.environ.get("RUNCRATE_BILLING_URL") or None


def _announce(mode: str, cassette: Path, embeddings: bool, media: bool = False) -> None:
    """The one line each example starts with, on stderr."""
    if mode == "replay":
        line = (
            f"[replay] {cassette.relative_to(ROOT)} (recorded from a real server, no "
            "network) · set RUNCRATE_API_KEY to run live"
        )
    else:
        line = f"[{mode}] {base_url('chat')} · model {chat_model()}"
        if embeddings:
            line += f" · embeddings {embedding_model()} @ {base_url('embeddings')}"
        if media:
            line += f" · media @ {base_url('media')}"
        if mode == "record":
            line += f" → {cassette.relative_to(ROOT)}"
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def session(name: str, *, embeddings: bool = False, media: bool = False) -> Iterator[None]:
    """Run the body live, or replay ``cassettes/examples/<name>.yaml`` with the network blocked.

    ``embeddings`` / ``media``: the example also embeds / uses the media endpoints (the start
    line then names their URL).
    """
    mode = _mode()
    cassette = CASSETTES / f"{name}.yaml"
    _announce(mode, cassette, embeddings, media)
    if mode == "live":
        yield
        return
    import vcr

    config = vcr_support.vcr_config()
    my_vcr = vcr.VCR(
        record_mode="all" if mode == "record" else "none",
        match_on=config["match_on"],
        filter_headers=config["filter_headers"],
        before_record_request=config["before_record_request"],
        before_record_response=config["before_record_response"],
        decode_compressed_response=True,
    )
    my_vcr.register_matcher("json_body", vcr_support.json_body_matcher)
    if mode == "replay":
        os.environ["RUNCRATE_API_KEY"] = "rc_live_replay_placeholder"
        for env in (*BASE_URL_ENV.values(), "RUNCRATE_BILLING_URL"):
            os.environ.pop(env, None)
        if not cassette.exists():
            raise SystemExit(f"missing cassette {cassette}; record it with scripts/record-examples")
    else:
        MODELS.parent.mkdir(parents=True, exist_ok=True)
        MODELS.write_text(
            json.dumps({"chat": chat_model(), "embedding": embedding_model()}, indent=2) + "\n"
        )
    with my_vcr.use_cassette(str(cassette)):
        yield
