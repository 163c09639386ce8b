"""Live when RUNCRATE_API_KEY is set; otherwise replay the example's recorded exchanges.

Recorded with ``scripts/record-examples`` against a real server; the same VCR matching and
scrubbing as the test cassettes (``tests/vcr_support.py``).
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

from tests import vcr_support  # noqa: E402  (path set just above)

CASSETTES = ROOT / "cassettes" / "examples"
MODELS = CASSETTES / "models.json"


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


def embeddings_base_url() -> str | None:
    """A separate embeddings endpoint, for local servers that serve embeddings elsewhere."""
    return os.environ.get("RUNCRATE_EMBEDDINGS_BASE_URL") if _mode() != "replay" else None


@contextlib.contextmanager
def session(name: str) -> Iterator[None]:
    """Run the body live, or replay ``cassettes/examples/<name>.yaml`` with the network blocked."""
    mode = _mode()
    if mode == "live":
        yield
        return
    import vcr

    cassette = CASSETTES / f"{name}.yaml"
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
        print(
            f"[{name}] No RUNCRATE_API_KEY set: replaying recorded exchanges from "
            f"{cassette.relative_to(ROOT)} (recorded from a real server, no network used).\n"
            f"[{name}] To run live: export RUNCRATE_API_KEY=rc_live_... "
            "(and RUNCRATE_BASE_URL for another OpenAI-compatible server).",
            file=sys.stderr,
        )
        os.environ["RUNCRATE_API_KEY"] = "rc_live_replay_placeholder"
        os.environ.pop("RUNCRATE_BASE_URL", None)
        if not cassette.exists():
            raise SystemExit(f"missing cassette {cassette}; record it with scripts/record-examples")
    else:
        MODELS.parent.mkdir(parents=True, exist_ok=True)
        MODELS.write_text(json.dumps({"chat": chat_model(), "embedding": embedding_model()},
                                     indent=2) + "\n")
    with my_vcr.use_cassette(str(cassette)):
        yield
